#!/usr/bin/env python3
"""Prints, for each signature of a PDF, what PAdES baseline level (ETSI EN 319 142-1 §6) its
structure meets, as read by pyHanko's PDF reader and asn1crypto (not by esignsp's code).

    pades_profile.py FILE.pdf

One line per signature:

    Signature1 subfilter=/ETSI.CAdES.detached M=yes Cert=no signed=content_type,...
        unsigned= name=... level=B-B

The level is the highest whose structural requirements the signature meets: B-B needs
/SubFilter /ETSI.CAdES.detached, /M, no /Cert, the signed attributes content-type,
message-digest and signing-certificate-v2 (or the v1 one) and no signing-time (§6.3);
B-T adds a signature-time-stamp unsigned attribute (§6.4); B-LT a /DSS in the catalog
(§6.5); B-LTA a document time-stamp after it (§6.6). Exit status 1 when no signature is found.
"""
import sys

from pyhanko.pdf_utils.reader import PdfFileReader


def attribute_names(attributes):
    if attributes is None or attributes.native is None:
        return []
    return [attribute["type"].native for attribute in attributes]


def level(sig_object, signed, unsigned, has_dss, doc_timestamps_after):
    if sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        return "none"
    if "/M" not in sig_object or "/Cert" in sig_object:
        return "none"
    if not {"content_type", "message_digest"} <= set(signed):
        return "none"
    if not ({"signing_certificate_v2", "signing_certificate"} & set(signed)):
        return "none"
    if "signing_time" in signed:
        return "none"
    result = "B-B"
    if "signature_time_stamp_token" in unsigned:
        result = "B-T"
        if has_dss:
            result = "B-LT"
            if doc_timestamps_after:
                result = "B-LTA"
    return result


def main(path):
    with open(path, "rb") as f:
        reader = PdfFileReader(f)
        has_dss = "/DSS" in reader.root
        signatures = reader.embedded_signatures
        if not signatures:
            print("no signatures")
            return 1
        for signature in signatures:
            sig_object = signature.sig_object
            signed = attribute_names(signature.signer_info["signed_attrs"])
            unsigned = attribute_names(signature.signer_info["unsigned_attrs"])
            later = [
                s for s in signatures
                if s.sig_object.get("/Type") == "/DocTimeStamp"
                and s.signed_revision > signature.signed_revision
            ]
            print(
                f"{signature.field_name} subfilter={sig_object.get('/SubFilter')}"
                f" M={'yes' if '/M' in sig_object else 'no'}"
                f" Cert={'yes' if '/Cert' in sig_object else 'no'}"
                f" signed={','.join(signed)} unsigned={','.join(unsigned)}"
                f" name={sig_object.get('/Name')!s}"
                f" level={level(sig_object, signed, unsigned, has_dss, bool(later))}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
