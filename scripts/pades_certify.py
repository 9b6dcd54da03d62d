#!/usr/bin/env python3
"""Certifies a PDF with pyHanko (a DocMDP certification signature, ISO 32000-1 §12.8.2.2), for
the PAdES signer's tests of documents that are already certified.

    pades_certify.py KEY.pem CERT.pem PERMISSION IN.pdf OUT.pdf

PERMISSION is a pyHanko MDPPerm name: NO_CHANGES (/P 1), FILL_FORMS (/P 2) or ANNOTATE (/P 3).
"""
import sys

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter


def main(key, cert, permission, source, target):
    signer = signers.SimpleSigner.load(key, cert)
    metadata = signers.PdfSignatureMetadata(
        field_name="Certification",
        certify=True,
        docmdp_permissions=MDPPerm[permission],
        subfilter=SigSeedSubFilter.PADES,
    )
    with open(source, "rb") as f:
        writer = IncrementalPdfFileWriter(f)
        with open(target, "wb") as out:
            signers.sign_pdf(writer, metadata, signer=signer, output=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
