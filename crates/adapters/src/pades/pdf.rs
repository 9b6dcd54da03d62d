//! The PDF side of a PAdES signature: an incremental update (ISO 32000-1 §7.5.6) appending a
//! signature field and its signature dictionary (§12.7.4.5, §12.8.1) to the original bytes,
//! which stay an unchanged prefix.
//!
//! The document is read sparsely where it can be ([`super::sparse`]: its cross-reference data
//! and only the objects the update reads), else whole with lopdf, strictly: a file whose
//! cross-reference data would need repair is refused as damaged, an encrypted one as
//! encrypted. lopdf serializes the objects
//! that change (the page's `/Annots`, the `/AcroForm`, perhaps the catalog); written by hand
//! here are only what no crate offers: the signature dictionary with its fixed-width
//! `/ByteRange` and `/Contents` slots, and the update's cross-reference section, in the form
//! of the section it chains to (a table after a table, §7.5.4; a stream after a stream,
//! §7.5.8), with `/Prev` and the trailer keys of the previous section.
//!
//! Order of work (ETSI EN 319 142-1 §5.1, ISO 32000-1 §12.8.1): [`prepare`] writes the update
//! with a zero-filled `/Contents` and the final `/ByteRange`; the caller hashes
//! [`Prepared::signed_parts`] (everything but the `/Contents` string, angle brackets included)
//! and [`Prepared::fill`]s the CMS into the slot.

use std::io::Write;
use std::ops::Range;

use esignsp_domain::{SignatureRequest, SigningError};

use super::revocation::ValidationData;
use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId, StringFormat, Writer};
use sha2::Digest;

/// Width of the `/ByteRange` slot: `[0 a b c]` padded with spaces (four numbers of at most
/// 13 digits fit).
const BYTE_RANGE_WIDTH: usize = 60;

/// Bytes reserved for a signature update besides its `/Contents` slot (the signature and widget
/// dictionaries, the changed page, form and catalog, the cross-reference section); a larger
/// update (a page with very many annotations) grows the buffer once.
const UPDATE_ROOM: usize = 16 * 1024;

/// A document with its signature update written, waiting for the CMS.
#[derive(Debug)]
pub(crate) struct Prepared {
    bytes: Vec<u8>,
    /// The `/Contents` hex string, from `<` to just past `>`.
    contents: Range<usize>,
}

impl Prepared {
    /// The signed bytes (ISO 32000-1 §12.8.1 `/ByteRange`): all before and all after the
    /// `/Contents` string.
    pub(crate) fn signed_parts(&self) -> [&[u8]; 2] {
        [&self.bytes[..self.contents.start], &self.bytes[self.contents.end..]]
    }

    /// The document with `der` (the CMS `ContentInfo`) hex-encoded into `/Contents`, padded
    /// with `0`.
    ///
    /// # Errors
    /// [`SigningError::Unexpected`] when `der` does not fit the reserved space.
    pub(crate) fn fill(mut self, der: &[u8]) -> Result<Vec<u8>, SigningError> {
        let hex = data_encoding::HEXUPPER.encode(der);
        let slot = self.contents.start + 1..self.contents.end - 1;
        if hex.len() > slot.len() {
            return Err(SigningError::Unexpected(
                format!("the signature ({} bytes) does not fit the {} reserved", der.len(), slot.len() / 2).into(),
            ));
        }
        self.bytes[slot.start..slot.start + hex.len()].copy_from_slice(hex.as_bytes());
        Ok(self.bytes)
    }
}

/// The form of a cross-reference section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XrefForm {
    /// A table, `xref` … `trailer` (ISO 32000-1 §7.5.4).
    Table,
    /// A cross-reference stream (ISO 32000-1 §7.5.8).
    Stream,
}

fn damaged(detail: impl Into<String>) -> SigningError {
    SigningError::Damaged(detail.into().into())
}

/// Reads `pdf` strictly.
///
/// # Errors
/// [`SigningError::NotPdf`] without a `%PDF-` header in the first 1024 bytes (ISO 32000-1
/// §7.5.2 and its implementation note), [`SigningError::Encrypted`], or
/// [`SigningError::Damaged`].
pub(crate) fn load(pdf: &[u8]) -> Result<Document, SigningError> {
    require_header(pdf)?;
    let options = LoadOptions { strict: true, ..LoadOptions::default() };
    // lopdf reads untrusted bytes; a panic in it is a damaged document, not a crash.
    let loaded = std::panic::catch_unwind(|| Document::load_mem_with_options(pdf, options))
        .map_err(|_| damaged("the PDF parser failed on this document"))?;
    let document = match loaded {
        Ok(document) => document,
        Err(
            lopdf::Error::Decryption(_)
            | lopdf::Error::InvalidPassword
            | lopdf::Error::UnsupportedSecurityHandler(_)
            | lopdf::Error::AlreadyEncrypted,
        ) => return Err(SigningError::Encrypted),
        Err(e) => return Err(SigningError::Damaged(Box::new(e))),
    };
    if document.trailer.has(b"Encrypt") || document.is_encrypted() || document.was_encrypted() {
        return Err(SigningError::Encrypted);
    }
    if document.xref_recovery.is_some() {
        return Err(damaged("its cross-reference data needs repair"));
    }
    Ok(document)
}

/// A `%PDF-` header in the first 1024 bytes (ISO 32000-1 §7.5.2 and its implementation note).
fn require_header(pdf: &[u8]) -> Result<(), SigningError> {
    if pdf[..pdf.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        Ok(())
    } else {
        Err(SigningError::NotPdf)
    }
}

/// The document for a signature update: read sparsely — the cross-reference data and the few
/// objects the update reads ([`super::sparse`]) — when it can be, else whole and strictly
/// ([`load`]).
///
/// # Errors
/// As [`load`].
fn for_update(pdf: &[u8]) -> Result<Document, SigningError> {
    require_header(pdf)?;
    match super::sparse::load(pdf) {
        Some(document) => Ok(document),
        None => {
            tracing::debug!("the PDF is not read sparsely: reading it whole");
            load(pdf)
        }
    }
}

/// The first page of the page tree under `catalog` (ISO 32000-1 §7.7.3): its first leaf,
/// depth first in order.
fn first_page(document: &Document, catalog: &Dictionary) -> Option<ObjectId> {
    let mut stack = vec![catalog.get(b"Pages").ok()?.clone()];
    let mut visited = 0;
    while let Some(node) = stack.pop() {
        visited += 1;
        if visited > 4096 {
            return None;
        }
        let Object::Reference(id) = node else { continue };
        let Ok(dictionary) = document.get_dictionary(id) else { continue };
        if dictionary.has_type(b"Page") {
            return Some(id);
        }
        if let Ok(kids) = dictionary.get_deref(b"Kids", document).and_then(Object::as_array) {
            stack.extend(kids.iter().rev().cloned());
        }
    }
    None
}

/// The form of the section `startxref` points at.
fn xref_form(pdf: &[u8], start: usize) -> Result<XrefForm, SigningError> {
    let rest = pdf.get(start..).ok_or_else(|| damaged("startxref points past the end"))?;
    let first = rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len());
    Ok(if rest[first..].starts_with(b"xref") { XrefForm::Table } else { XrefForm::Stream })
}

/// Whether a DocMDP certification signature (ISO 32000-1 §12.8.2.2) permits no changes
/// (`/P 1`).
fn certified_without_changes(document: &Document, catalog: &Dictionary) -> bool {
    let Ok(perms) = catalog.get_deref(b"Perms", document).and_then(Object::as_dict) else { return false };
    let Ok(signature) = perms.get_deref(b"DocMDP", document).and_then(Object::as_dict) else { return false };
    let Ok(references) = signature.get_deref(b"Reference", document).and_then(Object::as_array) else {
        return false;
    };
    references.iter().filter_map(|r| document.dereference(r).ok()).filter_map(|(_, r)| r.as_dict().ok()).any(|r| {
        let docmdp = r.get(b"TransformMethod").and_then(Object::as_name).is_ok_and(|n| n == b"DocMDP");
        let p = r
            .get_deref(b"TransformParams", document)
            .and_then(Object::as_dict)
            .and_then(|t| t.get(b"P"))
            .and_then(Object::as_i64)
            .unwrap_or(2);
        docmdp && p == 1
    })
}

/// `time` as a PDF date (ISO 32000-1 §7.9.4): `D:YYYYMMDDHHmmSS+HH'mm'`.
pub(crate) fn pdf_date(time: time::OffsetDateTime) -> String {
    let offset = time.offset();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}{sign}{:02}'{:02}'",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        offset.whole_hours().unsigned_abs(),
        offset.minutes_past_hour().unsigned_abs(),
    )
}

/// The field names of `/Fields` (their `/T`), to pick a new one.
fn field_names(document: &Document, form: &Dictionary) -> Vec<Vec<u8>> {
    let Ok(fields) = form.get_deref(b"Fields", document).and_then(Object::as_array) else { return Vec::new() };
    fields
        .iter()
        .filter_map(|f| document.dereference(f).ok())
        .filter_map(|(_, f)| f.as_dict().ok())
        .filter_map(|f| f.get(b"T").and_then(Object::as_str).ok().map(<[u8]>::to_vec))
        .collect()
}

/// Adds `widget` to the form's `/Fields` (the array object itself when it is indirect, into
/// `changed`), sets `/SigFlags` SignaturesExist|AppendOnly (ISO 32000-1 §12.7.2, Table 219)
/// and drops `/NeedAppearances`.
fn add_field(
    document: &Document,
    form: &mut Dictionary,
    widget: ObjectId,
    changed: &mut Vec<(ObjectId, Object)>,
) -> Result<(), SigningError> {
    match form.get(b"Fields") {
        Ok(Object::Reference(id)) => {
            let mut fields = document
                .get_object(*id)
                .and_then(Object::as_array)
                .map_err(|_| damaged("/AcroForm /Fields is not an array"))?
                .clone();
            fields.push(Object::Reference(widget));
            changed.push((*id, Object::Array(fields)));
        }
        Ok(Object::Array(fields)) => {
            let mut fields = fields.clone();
            fields.push(Object::Reference(widget));
            form.set("Fields", fields);
        }
        Ok(_) => return Err(damaged("/AcroForm /Fields is not an array")),
        Err(_) => form.set("Fields", vec![Object::Reference(widget)]),
    }
    let flags = form.get(b"SigFlags").and_then(Object::as_i64).unwrap_or(0);
    form.set("SigFlags", flags | 3);
    form.remove(b"NeedAppearances");
    Ok(())
}

/// Writes `text` as a PDF text string (ISO 32000-1 §7.9.2.2, lopdf's encoding).
fn text(out: &mut Vec<u8>, text: &str) -> Result<(), SigningError> {
    Writer::write_object(out, &lopdf::text_string(text)).map_err(|e| SigningError::Unexpected(Box::new(e)))
}

/// Appends the signature update to `pdf`, with a `/Contents` slot of `contents_len` bytes
/// (hex-encoded: twice as many digits).
///
/// # Errors
/// [`SigningError::NotPdf`], [`SigningError::Encrypted`], [`SigningError::Damaged`] (also for
/// a document without pages, catalog or trailer `/Root`) and
/// [`SigningError::ChangesNotPermitted`].
pub(crate) fn prepare(pdf: &[u8], request: &SignatureRequest, contents_len: usize) -> Result<Prepared, SigningError> {
    prepare_field(pdf, Some(request), contents_len)
}

/// Appends a document time-stamp update to `pdf` (ETSI EN 319 142-1 §5.4, ISO 32000-2
/// §12.8.5): a signature field whose dictionary has `/Type /DocTimeStamp` and `/SubFilter
/// /ETSI.RFC3161`, with a `/Contents` slot of `contents_len` bytes for the time-stamp token.
///
/// # Errors
/// As [`prepare`].
pub(crate) fn prepare_doc_timestamp(pdf: &[u8], contents_len: usize) -> Result<Prepared, SigningError> {
    prepare_field(pdf, None, contents_len)
}

/// [`prepare`] with `request`, or [`prepare_doc_timestamp`] without.
fn prepare_field(
    pdf: &[u8],
    request: Option<&SignatureRequest>,
    contents_len: usize,
) -> Result<Prepared, SigningError> {
    prepare_on(pdf, &for_update(pdf)?, request, contents_len)
}

/// [`prepare_field`] on `document`, read from `pdf` whole or sparsely.
fn prepare_on(
    pdf: &[u8],
    document: &Document,
    request: Option<&SignatureRequest>,
    contents_len: usize,
) -> Result<Prepared, SigningError> {
    let form_of_xref = xref_form(pdf, document.xref_start)?;
    let root = document.trailer.get(b"Root").and_then(Object::as_reference).map_err(|_| damaged("no /Root"))?;
    let catalog = document.get_dictionary(root).map_err(|_| damaged("no catalog"))?;
    if certified_without_changes(document, catalog) {
        return Err(SigningError::ChangesNotPermitted);
    }
    let page = first_page(document, catalog).ok_or_else(|| damaged("no pages"))?;
    let size = document.trailer.get(b"Size").and_then(Object::as_i64).unwrap_or(0);
    let mut next = u32::try_from(size).unwrap_or(0).max(document.max_id.saturating_add(1));
    let fresh = |next: &mut u32| {
        let id = *next;
        *next += 1;
        (id, 0)
    };
    let signature = fresh(&mut next);
    let widget = fresh(&mut next);
    let mut changed: Vec<(ObjectId, Object)> = Vec::new();

    // The widget annotation on the first page (ISO 32000-1 §12.5.2 /Annots).
    let page_dictionary = document.get_dictionary(page).map_err(|_| damaged("a page is not a dictionary"))?;
    match page_dictionary.get(b"Annots") {
        Ok(Object::Reference(id)) => {
            let mut annots = document
                .get_object(*id)
                .and_then(Object::as_array)
                .map_err(|_| damaged("a page's /Annots is not an array"))?
                .clone();
            annots.push(Object::Reference(widget));
            changed.push((*id, Object::Array(annots)));
        }
        Ok(Object::Array(annots)) => {
            let mut page_dictionary = page_dictionary.clone();
            let mut annots = annots.clone();
            annots.push(Object::Reference(widget));
            page_dictionary.set("Annots", annots);
            changed.push((page, Object::Dictionary(page_dictionary)));
        }
        Ok(_) => return Err(damaged("a page's /Annots is not an array")),
        Err(_) => {
            let mut page_dictionary = page_dictionary.clone();
            page_dictionary.set("Annots", vec![Object::Reference(widget)]);
            changed.push((page, Object::Dictionary(page_dictionary)));
        }
    }

    // The field in the interactive form (ISO 32000-1 §12.7.2).
    let mut new_objects: Vec<(ObjectId, Object)> = Vec::new();
    let names = match catalog.get(b"AcroForm") {
        Ok(Object::Reference(id)) => {
            let mut form = document.get_dictionary(*id).map_err(|_| damaged("/AcroForm is not a dictionary"))?.clone();
            let names = field_names(document, &form);
            add_field(document, &mut form, widget, &mut changed)?;
            changed.push((*id, Object::Dictionary(form)));
            names
        }
        Ok(Object::Dictionary(form)) => {
            let mut form = form.clone();
            let names = field_names(document, &form);
            add_field(document, &mut form, widget, &mut changed)?;
            let mut catalog = catalog.clone();
            catalog.set("AcroForm", form);
            changed.push((root, Object::Dictionary(catalog)));
            names
        }
        Ok(_) => return Err(damaged("/AcroForm is not a dictionary")),
        Err(_) => {
            let form_id = fresh(&mut next);
            let mut form = Dictionary::new();
            add_field(document, &mut form, widget, &mut changed)?;
            new_objects.push((form_id, Object::Dictionary(form)));
            let mut catalog = catalog.clone();
            catalog.set("AcroForm", Object::Reference(form_id));
            changed.push((root, Object::Dictionary(catalog)));
            Vec::new()
        }
    };
    let name = (1..)
        .map(|k| format!("Signature{k}"))
        .find(|n| !names.iter().any(|e| e == n.as_bytes()))
        .unwrap_or_else(|| "Signature".into());
    let mut widget_dictionary = Dictionary::new();
    widget_dictionary.set("Type", Object::Name(b"Annot".to_vec()));
    widget_dictionary.set("Subtype", Object::Name(b"Widget".to_vec()));
    widget_dictionary.set("FT", Object::Name(b"Sig".to_vec()));
    widget_dictionary.set("T", Object::String(name.into_bytes(), StringFormat::Literal));
    widget_dictionary.set("V", Object::Reference(signature));
    widget_dictionary.set("Rect", vec![0.into(), 0.into(), 0.into(), 0.into()]);
    // Print (4) | Locked (128): ISO 32000-1 §12.5.3, Table 165.
    widget_dictionary.set("F", 132);
    widget_dictionary.set("P", Object::Reference(page));
    new_objects.push((widget, Object::Dictionary(widget_dictionary)));

    // One allocation for the signed document: the original, the `/Contents` slot and room
    // for the update's few objects and cross-reference section.
    let mut out = Vec::with_capacity(pdf.len() + 2 * contents_len + UPDATE_ROOM);
    out.extend_from_slice(pdf);
    if !out.ends_with(b"\n") && !out.ends_with(b"\r") {
        out.push(b'\n');
    }
    let mut offsets: Vec<(ObjectId, usize)> = Vec::new();
    let io = |e: std::io::Error| SigningError::Unexpected(Box::new(e));

    // The signature dictionary (ISO 32000-1 §12.8.1, Table 252; ETSI EN 319 142-1 §5.3), or
    // the document time-stamp's (ISO 32000-2 §12.8.5, Table 262; EN 319 142-1 §5.4).
    offsets.push((signature, out.len()));
    if let Some(request) = request {
        write!(out, "{} 0 obj\n<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/ETSI.CAdES.detached/M", signature.0)
            .map_err(io)?;
        text(&mut out, &pdf_date(request.time))?;
        for (key, value) in
            [("Name", &request.signer_name), ("Reason", &request.reason), ("Location", &request.location)]
        {
            if let Some(value) = value {
                write!(out, "/{key}").map_err(io)?;
                text(&mut out, value)?;
            }
        }
    } else {
        write!(out, "{} 0 obj\n<</Type/DocTimeStamp/Filter/Adobe.PPKLite/SubFilter/ETSI.RFC3161", signature.0)
            .map_err(io)?;
    }
    out.extend_from_slice(b"/ByteRange");
    let byte_range = out.len()..out.len() + BYTE_RANGE_WIDTH;
    out.extend_from_slice(format!("{:<BYTE_RANGE_WIDTH$}", "[0 0 0 0]").as_bytes());
    out.extend_from_slice(b"/Contents");
    let contents_start = out.len();
    out.push(b'<');
    out.resize(out.len() + 2 * contents_len, b'0');
    out.push(b'>');
    let contents = contents_start..out.len();
    out.extend_from_slice(b">>\nendobj\n");

    let mut objects = changed;
    objects.extend(new_objects);
    objects.sort_by_key(|(id, _)| *id);
    for (id, object) in &objects {
        offsets.push((*id, out.len()));
        writeln!(out, "{} {} obj", id.0, id.1).map_err(io)?;
        Writer::write_object(&mut out, object).map_err(|e| SigningError::Unexpected(Box::new(e)))?;
        out.extend_from_slice(b"\nendobj\n");
    }

    write_xref(&mut out, document, pdf, form_of_xref, root, offsets, next)?;

    let range = format!("[0 {} {} {}]", contents.start, contents.end, out.len() - contents.end);
    if range.len() > BYTE_RANGE_WIDTH {
        return Err(SigningError::Unexpected("the document is too large for the /ByteRange slot".into()));
    }
    out[byte_range.start..byte_range.start + range.len()].copy_from_slice(range.as_bytes());
    Ok(Prepared { bytes: out, contents })
}

/// Writes the cross-reference section of an update to `out` (the original `pdf` with the
/// update's objects appended, at `offsets`), in the form of the section it chains to, with the
/// trailer `/Size` `next`, then `startxref` and `%%EOF`.
fn write_xref(
    out: &mut Vec<u8>,
    document: &Document,
    pdf: &[u8],
    form_of_xref: XrefForm,
    root: ObjectId,
    mut offsets: Vec<(ObjectId, usize)>,
    mut next: u32,
) -> Result<(), SigningError> {
    let io = |e: std::io::Error| SigningError::Unexpected(Box::new(e));
    let fresh = |next: &mut u32| {
        let id = *next;
        *next += 1;
        (id, 0)
    };
    // The trailer keys of the previous section (ISO 32000-1 §7.5.5, Table 15), /XRefStm and
    // the stream's own keys excepted; /ID keeps its first element (§14.4) and gets a new
    // second one: a digest of the original's length and of this update so far (its signature
    // dictionary carries the signing time), unique to the update without hashing the whole
    // document a second time.
    let mut trailer = Dictionary::new();
    trailer.set("Root", Object::Reference(root));
    if let Ok(info) = document.trailer.get(b"Info") {
        trailer.set("Info", info.clone());
    }
    if let Ok(Object::Array(id)) = document.trailer.get(b"ID") {
        if let Some(first) = id.first() {
            let mut digest = sha2::Sha256::new();
            digest.update((pdf.len() as u64).to_be_bytes());
            digest.update(out.get(pdf.len()..).unwrap_or_default());
            let second = digest.finalize()[..16].to_vec();
            trailer.set("ID", vec![first.clone(), Object::String(second, StringFormat::Hexadecimal)]);
        }
    }
    trailer.set("Prev", i64::try_from(document.xref_start).map_err(|e| SigningError::Unexpected(Box::new(e)))?);

    let xref_offset = out.len();
    match form_of_xref {
        XrefForm::Table => {
            offsets.sort_by_key(|(id, _)| *id);
            trailer.set("Size", i64::from(next));
            out.extend_from_slice(b"xref\n");
            for run in runs(&offsets) {
                writeln!(out, "{} {}", run[0].0 .0, run.len()).map_err(io)?;
                for ((_, generation), offset) in run {
                    write!(out, "{offset:010} {generation:05} n\r\n").map_err(io)?;
                }
            }
            out.extend_from_slice(b"trailer\n");
            Writer::write_object(out, &Object::Dictionary(trailer))
                .map_err(|e| SigningError::Unexpected(Box::new(e)))?;
            out.push(b'\n');
        }
        XrefForm::Stream => {
            let xref_id = fresh(&mut next);
            offsets.push((xref_id, xref_offset));
            offsets.sort_by_key(|(id, _)| *id);
            let width = (usize::BITS - xref_offset.leading_zeros()).div_ceil(8).max(4) as usize;
            let mut data = Vec::new();
            let mut index = Vec::new();
            for run in runs(&offsets) {
                index.push(Object::Integer(i64::from(run[0].0 .0)));
                index.push(Object::Integer(run.len() as i64));
                for ((_, generation), offset) in run {
                    data.push(1);
                    data.extend_from_slice(&(*offset as u64).to_be_bytes()[8 - width..]);
                    data.extend_from_slice(&generation.to_be_bytes());
                }
            }
            trailer.set("Type", Object::Name(b"XRef".to_vec()));
            trailer.set("Size", i64::from(next));
            trailer.set("W", vec![1.into(), (width as i64).into(), 2.into()]);
            trailer.set("Index", index);
            trailer.set("Length", data.len() as i64);
            writeln!(out, "{} 0 obj", xref_id.0).map_err(io)?;
            Writer::write_object(out, &Object::Dictionary(trailer))
                .map_err(|e| SigningError::Unexpected(Box::new(e)))?;
            out.extend_from_slice(b"\nstream\n");
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\nendstream\nendobj\n");
        }
    }
    write!(out, "startxref\n{xref_offset}\n%%EOF\n").map_err(io)?;
    Ok(())
}

/// The decoded contents of the streams an array entry `key` of `dss` refers to, to leave out
/// what the DSS holds already.
fn dss_streams(document: &Document, dss: &Dictionary, key: &[u8]) -> (Vec<Object>, Vec<Vec<u8>>) {
    let Ok(array) = dss.get_deref(key, document).and_then(Object::as_array) else { return (Vec::new(), Vec::new()) };
    let contents = array
        .iter()
        .filter_map(|o| document.dereference(o).ok())
        .filter_map(|(_, o)| o.as_stream().ok())
        .filter_map(|s| if s.dict.has(b"Filter") { s.decompressed_content().ok() } else { Some(s.content.clone()) })
        .collect();
    (array.clone(), contents)
}

/// Appends an update to `pdf` that adds `data` to the document security store (ISO 32000-2
/// §12.8.4.3; ETSI EN 319 142-1 §5.4.2): the catalog's `/DSS` with `/Certs`, `/OCSPs` and
/// `/CRLs`, arrays of streams holding DER certificates, OCSP responses and CRLs. An existing
/// DSS is extended (its entries stay, what it holds already is not added twice), never
/// replaced; nothing else changes.
///
/// # Errors
/// As [`prepare`].
pub(crate) fn append_dss(pdf: &[u8], data: &ValidationData) -> Result<Vec<u8>, SigningError> {
    let document = load(pdf)?;
    let form_of_xref = xref_form(pdf, document.xref_start)?;
    let root = document.trailer.get(b"Root").and_then(Object::as_reference).map_err(|_| damaged("no /Root"))?;
    let catalog = document.get_dictionary(root).map_err(|_| damaged("no catalog"))?;
    let size = document.trailer.get(b"Size").and_then(Object::as_i64).unwrap_or(0);
    let mut next = u32::try_from(size).unwrap_or(0).max(document.max_id.saturating_add(1));
    let mut fresh = || {
        let id = next;
        next += 1;
        (id, 0)
    };
    let (dss_id, mut dss) = match catalog.get(b"DSS") {
        Ok(Object::Reference(id)) => {
            (Some(*id), document.get_dictionary(*id).map_err(|_| damaged("/DSS is not a dictionary"))?.clone())
        }
        Ok(Object::Dictionary(dss)) => (None, dss.clone()),
        Ok(_) => return Err(damaged("/DSS is not a dictionary")),
        Err(_) => (None, Dictionary::new()),
    };
    let mut objects: Vec<(ObjectId, Object)> = Vec::new();
    for (key, items) in [("Certs", &data.certificates), ("OCSPs", &data.ocsp_responses), ("CRLs", &data.crls)] {
        let (mut array, present) = dss_streams(&document, &dss, key.as_bytes());
        for item in items {
            if present.contains(item) {
                continue;
            }
            let id = fresh();
            objects.push((id, Object::Stream(lopdf::Stream::new(Dictionary::new(), item.clone()))));
            array.push(Object::Reference(id));
        }
        if !array.is_empty() {
            dss.set(key, array);
        }
    }
    let dss_id = dss_id.unwrap_or_else(&mut fresh);
    objects.push((dss_id, Object::Dictionary(dss)));
    if catalog.get(b"DSS").and_then(Object::as_reference).ok() != Some(dss_id) {
        let mut catalog = catalog.clone();
        catalog.set("DSS", Object::Reference(dss_id));
        objects.push((root, Object::Dictionary(catalog)));
    }
    objects.sort_by_key(|(id, _)| *id);

    let mut out = pdf.to_vec();
    if !out.ends_with(b"\n") && !out.ends_with(b"\r") {
        out.push(b'\n');
    }
    let mut offsets: Vec<(ObjectId, usize)> = Vec::new();
    let io = |e: std::io::Error| SigningError::Unexpected(Box::new(e));
    for (id, object) in &objects {
        offsets.push((*id, out.len()));
        writeln!(out, "{} {} obj", id.0, id.1).map_err(io)?;
        Writer::write_object(&mut out, object).map_err(|e| SigningError::Unexpected(Box::new(e)))?;
        out.extend_from_slice(b"\nendobj\n");
    }
    write_xref(&mut out, &document, pdf, form_of_xref, root, offsets, next)?;
    Ok(out)
}

/// `offsets` (sorted by object number) split into runs of consecutive object numbers: the
/// subsections of a cross-reference table (ISO 32000-1 §7.5.4) or the `/Index` pairs of a
/// stream (§7.5.8.2).
fn runs(offsets: &[(ObjectId, usize)]) -> Vec<&[(ObjectId, usize)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=offsets.len() {
        if i == offsets.len() || offsets[i].0 .0 != offsets[i - 1].0 .0 + 1 {
            runs.push(&offsets[start..i]);
            start = i;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use lopdf::dictionary;

    use super::*;

    #[test]
    fn pdf_dates_carry_the_offset_in_the_iso_32000_form() {
        let t = time::macros::datetime!(2026-12-01 13:05:09 +01:30);
        assert_eq!(pdf_date(t), "D:20261201130509+01'30'");
        let t = time::macros::datetime!(2026-01-02 03:04:05 -05:00);
        assert_eq!(pdf_date(t), "D:20260102030405-05'00'");
        let t = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(pdf_date(t), "D:20260102030405+00'00'");
    }

    #[test]
    fn runs_split_at_gaps_in_the_object_numbers() {
        let offsets = [((3, 0), 10), ((4, 0), 20), ((7, 0), 30), ((8, 0), 40), ((10, 0), 50)];
        let runs = runs(&offsets);
        assert_eq!(runs.iter().map(|r| (r[0].0 .0, r.len())).collect::<Vec<_>>(), vec![(3, 2), (7, 2), (10, 1)]);
        assert!(super::runs(&[]).is_empty());
    }

    #[test]
    fn bytes_that_are_not_a_pdf_are_refused_as_such() {
        let request = SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH);
        assert!(matches!(prepare(b"hello", &request, 10), Err(SigningError::NotPdf)));
        assert!(matches!(prepare(b"", &request, 10), Err(SigningError::NotPdf)));
    }

    /// A one-page PDF (lopdf, classic table); `with_page` false leaves the page tree empty.
    fn tiny_pdf(with_page: bool) -> Vec<u8> {
        let mut document = Document::with_version("1.4");
        let pages = document.new_object_id();
        let mut kids = Vec::new();
        if with_page {
            kids.push(Object::Reference(document.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages, "MediaBox" => vec![0.into(), 0.into(), 10.into(), 10.into()],
            })));
        }
        let count = kids.len() as i64;
        document
            .objects
            .insert(pages, Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }));
        let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
        document.trailer.set("Root", catalog);
        document.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
        let mut out = Vec::new();
        document.save_to(&mut out).expect("save");
        out
    }

    #[test]
    fn the_byte_range_leaves_out_exactly_the_contents_string() {
        let request = SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH);
        let pdf = tiny_pdf(true);
        let prepared = prepare(&pdf, &request, 8).expect("prepared");
        let [before, after] = prepared.signed_parts();
        assert!(before.starts_with(&pdf), "the original is a prefix");
        assert!(before.ends_with(b"/Contents"), "the gap starts at '<'");
        assert!(after.starts_with(b">>"), "and ends past '>'");
        assert!(after.ends_with(b"%%EOF\n"), "the second part runs to the end");
        let (gap_start, gap_end) = (before.len(), before.len() + 18);
        let expected = format!("/ByteRange[0 {gap_start} {gap_end} {}]", after.len());
        {
            let text = String::from_utf8_lossy(before);
            let range = &text[text.rfind("/ByteRange").expect("/ByteRange")..];
            assert!(range.starts_with(&expected), "{range}");
        }
        let signed = prepared.fill(&[0xAB; 8]).expect("fits");
        assert_eq!(&signed[gap_start..gap_end], b"<ABABABABABABABAB>");
    }

    #[test]
    fn a_signature_larger_than_its_slot_is_an_error_not_a_truncated_signature() {
        let request = SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH);
        let prepared = prepare(&tiny_pdf(true), &request, 8).expect("prepared");
        assert!(matches!(prepared.fill(&[0; 9]), Err(SigningError::Unexpected(_))));
    }

    #[test]
    fn a_pdf_without_pages_is_damaged() {
        let request = SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH);
        assert!(matches!(prepare(&tiny_pdf(false), &request, 8), Err(SigningError::Damaged(_))));
    }

    /// The sparse read of `pdf` holds the objects of the whole read, and gives the very same
    /// signature update.
    fn assert_same_update(pdf: &[u8]) {
        let request = SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH);
        let sparse = super::super::sparse::load(pdf).expect("read sparsely");
        let whole = load(pdf).expect("read whole");
        assert!(sparse.objects.len() < whole.objects.len() || whole.objects.len() < 8, "only what the update reads");
        for (id, object) in &sparse.objects {
            assert_eq!(whole.objects.get(id), Some(object), "object {id:?}");
        }
        let read_sparsely = prepare_on(pdf, &sparse, Some(&request), 64).expect("sparse update").bytes;
        let read_whole = prepare_on(pdf, &whole, Some(&request), 64).expect("whole update").bytes;
        assert!(read_sparsely == read_whole, "the same update");
    }

    #[test]
    fn a_sparse_read_gives_the_update_a_whole_read_gives() {
        let request = SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH);
        let signed_once = |pdf: &[u8]| prepare(pdf, &request, 8).expect("prepared").fill(&[0x30, 0]).expect("fits");
        let classic = esignsp_testkit::pdf::multi_page_pdf(12);
        assert_same_update(&classic);
        assert_same_update(&signed_once(&classic));
        assert_same_update(&signed_once(&signed_once(&classic)));
        assert_same_update(&tiny_pdf(true));
        let scratch = esignsp_testkit::pdf::scratch("sparse");
        let streams = esignsp_testkit::pdf::with_object_streams(&scratch, &classic);
        assert_same_update(&streams);
        assert_same_update(&signed_once(&streams));
    }

    #[test]
    fn a_truncated_pdf_is_damaged() {
        let request = SignatureRequest::at(time::OffsetDateTime::UNIX_EPOCH);
        let pdf = b"%PDF-1.4\n1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n";
        assert!(matches!(prepare(pdf, &request, 10), Err(SigningError::Damaged(_))));
    }
}
