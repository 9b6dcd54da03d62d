#!/usr/bin/env python3
"""Long-term validation of a PDF's signatures with pyHanko's AdES validator (ETSI EN 319 102-1
§5.5/§5.6.3, pyhanko.sign.validation.ades), *offline*: revocation data and certificates are
taken only from the document (its DSS and CMS), never fetched — what a B-LT or B-LTA signature
must make possible (ETSI EN 319 142-1 §6.5, §6.6).

    pades_ltv.py ROOT.pem FILE.pdf [--future YEARS]

One line per (non-time-stamp) signature:

    Signature1 indication=PASSED/OK best_time=... oldest_doc_ts=...

With --future, also pyHanko's simulated validation YEARS from now (simulate_future_ades_lta_
validation: every object in the file proven to exist now, no fetching): whether the signature
stays verifiable from what the file holds once the certificates' revocation status can no
longer be asked. Exit status 1 unless every signature PASSED.
"""
import asyncio
import sys
from datetime import datetime, timedelta, timezone

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus
from pyhanko.sign.validation.ades import (
    ades_lta_validation,
    simulate_future_ades_lta_validation,
)
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    REQUIRE_REVINFO,
    CertRevTrustPolicy,
    FreshnessReqType,
)
from pyhanko_certvalidator.registry import SimpleTrustManager


def spec(root):
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[root]),
        revinfo_policy=CertRevTrustPolicy(
            REQUIRE_REVINFO,
            freshness=None,
            freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
        ),
    )
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
            ),
        )
    )


def describe(result):
    return (
        f"indication={result.ades_subindic.status.name}/{result.ades_subindic.name}"
        f" best_time={getattr(result, 'best_signature_time', None)}"
        f" oldest_doc_ts={getattr(result, 'oldest_evidence_record_timestamp', None)}"
    )


async def main(root_path, path, future_years):
    root = load_cert_from_pemder(root_path)
    ok = True
    with open(path, "rb") as f:
        reader = PdfFileReader(f)
        signatures = reader.embedded_regular_signatures
        if not signatures:
            print("no signatures")
            return 1
        for sig in signatures:
            result = await ades_lta_validation(sig, spec(root))
            ok &= result.ades_subindic.status == AdESStatus.PASSED
            print(f"{sig.field_name} offline {describe(result)}")
            if future_years:
                future = datetime.now(tz=timezone.utc) + timedelta(days=365 * future_years)
                result = await simulate_future_ades_lta_validation(sig, spec(root), future_validation_time=future)
                ok &= result.ades_subindic.status == AdESStatus.PASSED
                print(f"{sig.field_name} in {future_years} years {describe(result)}")
    return 0 if ok else 1


if __name__ == "__main__":
    years = int(sys.argv[sys.argv.index("--future") + 1]) if "--future" in sys.argv else 0
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], years)))
