#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/, taken from the
inputs of the unit and HTTP tests (crates/api/src/dto.rs, auth.rs, tests/http/*.rs). Files are
named by the SHA-1 of their content, as libFuzzer names corpus files, so re-running adds
nothing twice. scripts/fuzz.sh runs it before fuzzing."""
import hashlib, json, os, sys

ROOT = os.path.dirname(os.path.abspath(__file__))
B = "esignsp-fuzz"
ID = "hrcmc4pr78dt4s35jlbi4nmdrler4nn2"
DOC = "0123456789abcdefghijklmnopqrstuv"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PROCESS = ('{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","labels":[["digitalid","server"]],'
           '"signer":{"signature_policy_id":"urn:safelayer:eidas:policies:sign:document:pdf","parameters":{"type":"pades",'
           '"signature_field":{"name":"Sign1","page":"1"}}},"ui_locales":["en"],"finish_callback_url":"https://relying.example/done?x=1"}')

def b(s):
    return s if isinstance(s, bytes) else s.encode()

result_body = [
    '{"status":"finished"}', '{"status":"finished","details":null}', '{"status":"finished","details":{}}',
    '{"status":"finished","details":{"message":null}}', '{"status":"finished","details":{"message":"ok"},"extra":[1]}',
    '{"status":"failed","details":{"message":"signed"}}', '{"status":"failed_documents"}', '{"status":"canceled"}',
    '{"status":"finished"', '{"status":"finished","status":"failed"}',
    '{"status":"finished","details":{"message":"a","message":"b"}}', b'\xef\xbb\xbf{"status":"finished"}',
    b'{"status":"fini\xffshed"}', '{"status":"finished","details":{"message":"\\ud800"}}',
    '{"status":"finished","details":{"message":"a\\u0000b"}}', '{"status":"Finished"}', '{"status":"done"}',
    '{"status":1}', '{"details":{}}', '{"status":"finished","details":"x"}', '{"status":"finished"} x', '[]', '',
    'null', '{"status":["finished"]}', '{"status":"finished","details":{"message":7}}',
    '{"status":"finished","details":{"message":"%s"}}' % ("x" * 4097),
    '{"status":"canceled","details":{"message":"\\u00e9t\\u00e9 \\ud83d\\ude00"}}',
]

process_json = [
    PROCESS, '{"process_type":"urn:safelayer:eidas:processes:document:sign"}',
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","labels":[["walkthrough"]],"finish_callback_url":"https://relying.example/done"}',
    '{"process_type":"urn:x"}', '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","labels":["x"]}',
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","finish_callback_url":"javascript:alert(document.cookie)//"}',
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","finish_callback_url":"com.example.app://done"}',
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","ui_locales":["en",1],"views":{},"timestamp":{},"signer":null}',
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","labels":[["a\\u0000"]]}',
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","documents":[{"id":"%s"}]}' % DOC,
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","documents":[{"url":"https://h/trustedx-resources/esignsp/v2/documents/%s/?x#y"}]}' % DOC,
    '{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp","documents":[{"id":"nope"},{}]}',
    '[{"signature_policy_id":"urn:x","parameters":{"type":"pades"}}]', '[1]', '[{"a":"\\u0000"}]',
    '{"a":1,"a":2}', '{"n":1e400}', '{"n":-0.0,"m":1.5e-300,"k":18446744073709551615}',
]

def multipart(parts, boundary=B, end=True):
    body = b""
    for headers, content in parts:
        body += b("--%s\r\n%s\r\n\r\n" % (boundary, headers)) + b(content) + b"\r\n"
    if end:
        body += b("--%s--\r\n" % boundary)
    return body

J = PROCESS
multipart_form = [
    multipart([('Content-Disposition: form-data; name="process"', J),
               ('Content-Disposition: form-data; name="document"; filename="a.pdf"\r\nContent-Type: application/pdf', PDF)]),
    multipart([('Content-Type: application/json; charset=utf-8\r\nContent-Disposition: form-data; name=process', J),
               ("Content-Type: application/octet-stream\r\nContent-Disposition: form-data; name=document; filename=a.pdf; filename*=utf-8''%C3%A4.pdf", PDF)]),
    multipart([('Content-Disposition: form-data; name="document"; filename="a.pdf"', PDF),
               ('Content-Disposition: form-data; name="process"; filename="process.json"\r\nContent-Type: application/json', J)]),
    multipart([('Content-Disposition: form-data; name="process"\r\nContent-Type: text/plain', J),
               ('Content-Disposition: form-data; name="document"', PDF)]),
    multipart([('Content-Disposition: form-data; name="extra"', "ignored"), ('Content-Disposition: form-data; name="process"', J),
               ('Content-Disposition: form-data; name="document"; filename="a.pdf"', PDF)]),
    multipart([('Content-Disposition: form-data; name="document"; filename="contract.pdf"\r\nContent-Length: %d\r\nContent-Type: application/pdf' % len(PDF), PDF),
               ('Content-Disposition: form-data; name="signers"', '[{"signature_policy_id":"urn:x"}]')]),
    multipart([("Content-Disposition: form-data; name=\"document\"; filename*=UTF-8''a%00b.pdf", PDF)]),
    multipart([("Content-Disposition: form-data; name=\"document\"; filename*=iso-8859-1''%E9t%E9.pdf", PDF)]),
    multipart([('Content-Disposition: form-data; name="document"', "")]),
    multipart([('Content-Disposition: form-data; name="process"', J), ('Content-Disposition: form-data; name="process"', J)]),
    multipart([('Content-Disposition: form-data; name="document"', PDF)], end=False),
    multipart([('Content-Disposition: form-data; name="document"', PDF * 120)]),
    b"--" + b(B) + b"\r\nContent-Disposition: form-data; name=\"document\"\r\n\r\nx\r\n--" + b(B) + b"\r\n",
    b"garbage",
]

content_disposition = [
    'form-data; name="document"; filename="contract.pdf"', 'form-data; name=document; filename=a.pdf; filename*=utf-8\'\'%C3%A4.pdf',
    "form-data; name=\"document\"; filename*=UTF-8''a%00b.pdf", "form-data; name=\"document\"; filename*=iso-8859-1''%00",
    "form-data; name=\"document\"; filename*=iso-8859-1''%E9t%E9.pdf", 'form-data; name="document"; filename="a\\"b\\\\c.pdf"',
    "form-data; name=\"document\"; filename*=UTF-8'en'%F0%9F%98%80.pdf", 'form-data; name="document"',
    'form-data; name="process"; filename="process.json"', 'attachment; filename="x.pdf"', 'form-data', 'form-data; name=""',
    "form-data; name=\"document\"; filename*=utf-8''%ZZ", 'form-data; name="document"; filename="%s"' % ("a" * 3000),
    'form-data; name="document"; filename=""; filename*=UTF-8\'\'',
]

authorization = [
    "\nBearer abc.def-_~+/==", "\nbearer abc", "\nBEARER    abc", "", "access_token=abc", "\nBasic dXNlcjpwYXNz", "\nBearer",
    "\nBearer ", "\nBearer\tabc", "\nBearer abc def", "\nBearer a=b", "\nBearer a,b", "\nBearer abc\nBearer abc",
    "x=1&access_token=abc\nBearer abc", b"\nBearer \xe9abc", "\ntrace-me-42", "\n" + "r" * 129,
    "ui_locales=en\nBearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
]

query_string = [
    "signerProcessId=" + ID, "signerProcessId=%s&ui_locales=en" % ID, "ui_locales=en&signerProcessId=" + ID.upper(),
    "signerProcessId=x&signerProcessId=" + ID, "access_token=abc", "x=1&access_token=abc", "signerProcessId=%68" + ID[1:],
    "signerProcessId=" + ID + "+", "a=%zz&b", "", "&&=&=x", "access_token",
]

now = 1767225600  # 2026-01-01; exp far ahead
far = 4102444800  # 2100-01-01
def claims(**over):
    c = {"iss": "https://as.fuzz.example", "aud": "esignsp", "exp": far, "iat": now, "nbf": now, "sub": "relying-app",
         "client_id": "relying-app", "jti": "j1", "scope": "openid urn:safelayer:eidas:sign:process:document"}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c, separators=(",", ":"))
H = '{"alg":"EdDSA","typ":"at+jwt"}'
def signed(mode, header, claim):
    return bytes([mode]) + b(header) + b"\xff" + b(claim)
jwt = [
    signed(0, H, claims()), signed(0, '{"alg":"EdDSA","typ":"application/AT+JWT","kid":"k"}', claims(aud=["x", "esignsp"])),
    signed(0, H, claims(client_id="signing-app")), signed(0, H, claims(exp=1000)), signed(0, H, claims(iss="https://evil")),
    signed(0, H, claims(scope="urn:safelayer:eidas:sign:process:documents")), signed(0, H, claims(jti=None)),
    signed(0, '{"alg":"EdDSA","typ":"JWT"}', claims()), signed(0, '{"alg":"none"}', claims()),
    signed(0, '{"alg":"HS256","typ":"at+jwt"}', claims()), signed(0, '{"alg":"EdDSA","typ":"at+jwt","crit":["b64"]}', claims()),
    signed(1, '{"alg":"EdDSA"}', claims(client_id=None, scope=None, azp="app", scp=["urn:safelayer:eidas:sign:process:document"])),
    signed(1, '{"alg":"EdDSA","typ":"jwt"}', claims(client_id=None, iat=None, jti=None, scp="urn:safelayer:eidas:sign:process:document")),
    signed(0, H, claims(nbf=far)), signed(0, H, claims(iat=far)), signed(0, H, claims(exp="4102444800")),
    signed(0, H, '{"exp":4102444800,"exp":1}'), signed(0, H, claims(client_id="a\u0001b")),
    bytes([2]) + b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln", bytes([3]) + b"a.b.c.d", bytes([2]) + b"opaque-token",
]

paths = [
    "/trustedx-resources/esignsp/v2/signer_processes/" + ID, "/trustedx-resources/esignsp/v2/signer_processes/%s/result" % ID,
    "/trustedx-resources/esignsp/v2/signer_processes/%s/documents/%s/result" % (ID, DOC),
    "/trustedx-resources/esignsp/v2/documents/%s" % DOC, "/trustedx-resources/esignsp/v2/documents/%s/content" % DOC,
    "/trustedx-resources/esignsp/v2/signer_processes/%68" + ID[1:] + "/events",
    "/trustedx-resources/esignsp/v2/signer_processes/x", "/trustedx-resources/esignsp/v2/signer_processes/%2F..%2F/result",
    "/trustedx-resources/esignsp/v2/signer_processes/" + ID.upper() + "/documents",
    "/trustedx-resources/esignsp/v2/signer_processes/" + ID + "?ui_locales=en",
]

def pdf_classic(objects, version="1.4", prev=None, base=b"", start=1):
    """A PDF (or, after `base`, an incremental update of it) of `objects` (bodies of objects
    start, start+1, ...) with a classic cross-reference table and correct offsets."""
    out = bytearray(base or b"%%PDF-%s\n%%\xe2\xe3\xcf\xd3\n" % version.encode())
    offsets = []
    for n, body in enumerate(objects, start):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + b(body) + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n"
    if not base:
        out += b"0 1\n0000000000 65535 f \n"
    out += b"%d %d\n" % (start, len(objects)) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    size = start + len(objects)
    out += b"trailer\n<< /Size %d /Root 1 0 R" % size + (b" /Prev %d" % prev if prev is not None else b"") + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out), xref

def pdf_xref_stream(objects, version="1.5"):
    """A PDF of `objects` with an uncompressed cross-reference stream (ISO 32000-1 §7.5.8)."""
    out = bytearray(b"%%PDF-%s\n%%\xe2\xe3\xcf\xd3\n" % version.encode())
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + b(body) + b"\nendobj\n"
    n = len(objects) + 1
    xref = len(out)
    rows = b"\x00\x00\x00\x00\x00\xff\xff" + b"".join(b"\x01" + o.to_bytes(4, "big") + b"\x00\x00" for o in offsets)
    rows += b"\x01" + xref.to_bytes(4, "big") + b"\x00\x00"
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n" % (n, n + 1, len(rows))
            + rows + b"\nendstream\nendobj\n")
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)

PAGE = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>",
        "<< /Length 22 >>\nstream\nBT 72 720 Td (x) Tj ET\nendstream"]
classic, classic_xref = pdf_classic(PAGE)
updated, _ = pdf_classic(["<< /Type /Catalog /Pages 2 0 R /Lang (en) >>"], prev=classic_xref, base=classic)
# The PDF reader of the PAdES signer: hand-made PDFs with exact offsets (a classic table, an
# incremental update, a cross-reference stream, an AcroForm). The corpus also keeps three files
# made once by hand from `classic`/the xref-stream PDF with the fuzz key
# (crates/fuzzing/data/): certified by scripts/pades_certify.py (FILL_FORMS), signed by
# `pyhanko sign addsig`, and rewritten by `qpdf --object-streams=generate`.
pades_sign = [
    classic, updated, pdf_xref_stream(PAGE), pdf_classic(PAGE, version="1.7")[0],
    pdf_classic(PAGE[:3] + ["<< /Length 22 /Filter /FlateDecode >>\nstream\nBT 72 720 Td (x) Tj ET\nendstream"])[0],
    pdf_classic(["<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /SigFlags 3 >> >>"] + PAGE[1:])[0],
    PDF, b"%PDF-1.4\n", b"%PDF-1.4\nxref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 >>\nstartxref\n9\n%%EOF\n",
]

TARGETS = {"result_body": result_body, "process_json": process_json, "multipart_form": multipart_form,
           "content_disposition": content_disposition, "authorization": authorization, "query_string": query_string,
           "jwt": jwt, "path_id": paths, "pades_sign": pades_sign}

for name, seeds in TARGETS.items():
    d = os.path.join(ROOT, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for seed in seeds:
        data = b(seed)
        with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
