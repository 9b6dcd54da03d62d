"""pyHanko signing the same PDF with the same key, in one process, for scripts/bench.sh
(issue #16 item 3): PAdES B-B approval signatures, one after another for SECONDS, timed after
one warm-up signature. Prints one JSON line: signatures, seconds, per_second, cpu_seconds,
cpu_ms_per_signature.

    bench_pyhanko_sign.py KEY.pem CERT.pem PDF SECONDS
"""
import io
import json
import sys
import time

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter


def sign_once(signer, pdf):
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    metadata = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=SigSeedSubFilter.PADES)
    out = io.BytesIO()
    signers.sign_pdf(writer, metadata, signer=signer, output=out)
    return out.getvalue()


def main(key, cert, pdf_file, seconds):
    signer = signers.SimpleSigner.load(key, cert)
    pdf = open(pdf_file, "rb").read()
    assert sign_once(signer, pdf).startswith(pdf)
    n, cpu0, t0 = 0, time.process_time(), time.monotonic()
    while time.monotonic() - t0 < float(seconds):
        sign_once(signer, pdf)
        n += 1
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    print(json.dumps({"signatures": n, "seconds": elapsed, "per_second": n / elapsed, "cpu_seconds": cpu,
                      "cpu_ms_per_signature": cpu * 1000 / max(n, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
