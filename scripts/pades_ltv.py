#!/usr/bin/env python3
"""Long-term validation of a PDF's signatures with pyHanko, *offline*: revocation data and
certificates are taken only from the document (its DSS and CMS), never fetched — what a B-LT or
B-LTA signature must make possible (ETSI EN 319 142-1 §6.5, §6.6).

    pades_ltv.py ROOT.pem FILE.pdf [--lta [--future YEARS]]

For each (non-time-stamp) signature, first the DSS-only check: pyHanko's validator with a
validation context made from the document's DSS alone (no fetching, revocation mode
"require": every certificate of the signer's and the TSA's paths but the root needs a CRL or
OCSP response from the DSS):

    Signature1 dss-only bottom_line=True summary=INTACT:TRUSTED,TIMESTAMP_TOKEN<...>,...

With --lta, also pyHanko's AdES LTA validation (ETSI EN 319 102-1 §5.6.3) without fetching,
over the document time-stamps after the signature:

    Signature1 offline indication=PASSED/OK best_time=... oldest_doc_ts=...

and with --future, its simulated validation YEARS from now (simulate_future_ades_lta_
validation: every object in the file proven to exist now, no fetching): whether the signature
stays verifiable from what the file holds once revocation status can no longer be asked.
Exit status 1 unless every check passed.
"""
import asyncio
import sys
from datetime import datetime, timedelta, timezone

from pyhanko.keys import load_cert_from_pemder
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
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


async def dss_only(reader, sig, root):
    dss = DocumentSecurityStore.read_dss(reader)
    kwargs = {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "require"}
    status = await async_validate_pdf_signature(
        sig,
        signer_validation_context=dss.as_validation_context(kwargs),
        ts_validation_context=dss.as_validation_context(kwargs),
    )
    print(f"{sig.field_name} dss-only bottom_line={status.bottom_line} summary={status.summary()}")
    return status.bottom_line


async def main(root_path, path, lta, future_years):
    root = load_cert_from_pemder(root_path)
    ok = True
    with open(path, "rb") as f:
        reader = PdfFileReader(f)
        signatures = reader.embedded_regular_signatures
        if not signatures:
            print("no signatures")
            return 1
        for sig in signatures:
            ok &= await dss_only(reader, sig, root)
            if not lta:
                continue
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
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], "--lta" in sys.argv, years)))
