//! A sparse reader of a PDF: its cross-reference data and trailer (ISO 32000-1 §7.5.4
//! tables, §7.5.5 trailers, §7.5.6 incremental updates, §7.5.8 cross-reference streams) and
//! then only the objects a signature update reads — the catalog, the page tree down to the
//! first page, that page's `/Annots`, the `/AcroForm` with its `/Fields` and their
//! dictionaries, and the `/Perms` chain of a certification — instead of parsing every object
//! of the document (the whole-document parse was 37 % of a signature's CPU time, see
//! docs/PERFORMANCE.md). Objects are read at their cross-reference offsets, or from their
//! object streams (§7.5.7).
//!
//! It reads only what it is certain of: any section, entry or object it cannot read exactly
//! (a hybrid-reference file's `/XRefStm`, an `/Encrypt` entry, an offset that does not hold
//! the object it should, a token it does not know) makes [`load`] answer `None`, and the
//! signer then loads the document whole and strictly with lopdf, which refuses it or reads it.

use std::collections::{BTreeMap, HashMap, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId, Stream, StringFormat};

/// Deepest nesting of arrays and dictionaries read (deeper: not read sparsely).
const MAX_DEPTH: usize = 64;

/// Most cross-reference sections followed through `/Prev`.
const MAX_SECTIONS: usize = 256;

/// Most page tree nodes visited on the way to the first page, and most fields read.
const MAX_NODES: usize = 4096;

/// Largest decoded cross-reference or object stream read sparsely.
const MAX_DECODED: usize = 64 * 1024 * 1024;

/// Where the newest cross-reference section puts an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// At this byte offset, with this generation.
    At(usize, u16),
    /// The `index`-th object of object stream `stream` (generation 0).
    Compressed { stream: u32, index: usize },
    /// Free.
    Free,
}

/// The document's cross-reference data and the objects read so far.
struct Sparse<'p> {
    pdf: &'p [u8],
    entries: HashMap<u32, Entry>,
    /// Decoded object streams: their `/First` and content.
    object_streams: HashMap<u32, (usize, Vec<u8>)>,
    objects: BTreeMap<ObjectId, Object>,
}

/// `pdf` as a lopdf [`Document`] that holds its trailer, `xref_start`, `max_id` and only
/// the objects a signature update reads; `None` when it cannot be read sparsely with
/// certainty (then load it whole).
pub(crate) fn load(pdf: &[u8]) -> Option<Document> {
    let xref_start = startxref(pdf)?;
    let mut sparse = Sparse { pdf, entries: HashMap::new(), object_streams: HashMap::new(), objects: BTreeMap::new() };
    let trailer = sparse.read_sections(xref_start)?;
    if trailer.has(b"Encrypt") {
        return None;
    }
    sparse.read_needed(&trailer)?;
    let max_id = sparse.entries.keys().copied().max().unwrap_or(0);
    let mut document = Document::new();
    document.trailer = trailer;
    document.xref_start = xref_start;
    document.max_id = max_id;
    document.objects = sparse.objects;
    Some(document)
}

/// The offset after the last `startxref` (§7.5.5), in the file's last 1 KiB.
fn startxref(pdf: &[u8]) -> Option<usize> {
    let tail_start = pdf.len().saturating_sub(1024);
    let tail = &pdf[tail_start..];
    let at = tail.windows(9).rposition(|w| w == b"startxref")?;
    let mut lexer = Lexer::at(pdf, tail_start + at + 9);
    let offset = lexer.unsigned()?;
    (offset < pdf.len()).then_some(offset)
}

impl Sparse<'_> {
    /// Reads the section at `start` and every older one through `/Prev`; the newest section's
    /// entry of an object wins (§7.5.6). Answers the newest trailer.
    fn read_sections(&mut self, start: usize) -> Option<Dictionary> {
        let mut newest: Option<Dictionary> = None;
        let mut seen = HashSet::new();
        let mut next = Some(start);
        while let Some(offset) = next {
            if !seen.insert(offset) || seen.len() > MAX_SECTIONS {
                return None;
            }
            let mut lexer = Lexer::at(self.pdf, offset);
            lexer.skip_space();
            let trailer =
                if lexer.keyword(b"xref") { self.read_table(&mut lexer)? } else { self.read_stream(&mut lexer)? };
            if trailer.has(b"XRefStm") || trailer.has(b"Encrypt") {
                return None;
            }
            next = match trailer.get(b"Prev") {
                Ok(Object::Integer(prev)) => Some(usize::try_from(*prev).ok()?),
                Ok(_) => return None,
                Err(_) => None,
            };
            newest.get_or_insert(trailer);
        }
        newest
    }

    /// A cross-reference table after its `xref` keyword, and its trailer (§7.5.4, §7.5.5).
    fn read_table(&mut self, lexer: &mut Lexer<'_>) -> Option<Dictionary> {
        loop {
            lexer.skip_space();
            if lexer.keyword(b"trailer") {
                break;
            }
            let first = u32::try_from(lexer.unsigned()?).ok()?;
            let count = u32::try_from(lexer.unsigned()?).ok()?;
            for number in first..first.checked_add(count)? {
                let offset = lexer.unsigned()?;
                let generation = u16::try_from(lexer.unsigned()?).ok()?;
                lexer.skip_space();
                let kind = *lexer.bytes.get(lexer.at)?;
                lexer.at += 1;
                let entry = match kind {
                    b'n' => Entry::At(offset, generation),
                    b'f' => Entry::Free,
                    _ => return None,
                };
                // Object 0 heads the free list; an in-use entry at offset 0 is not an object.
                if number != 0 && !(kind == b'n' && offset == 0) {
                    self.entries.entry(number).or_insert(entry);
                }
            }
        }
        lexer.skip_space();
        match lexer.object(0)? {
            Object::Dictionary(trailer) => Some(trailer),
            _ => None,
        }
    }

    /// A cross-reference stream (§7.5.8): its entries, and its dictionary as the trailer.
    fn read_stream(&mut self, lexer: &mut Lexer<'_>) -> Option<Dictionary> {
        let (_, object) = self.indirect_object(lexer)?;
        let Object::Stream(stream) = object else { return None };
        if !stream.dict.has_type(b"XRef") {
            return None;
        }
        let widths: Vec<usize> = array(&stream.dict, b"W")?
            .iter()
            .map(|w| w.as_i64().ok().and_then(|w| usize::try_from(w).ok()).filter(|w| *w <= 8))
            .collect::<Option<_>>()?;
        let [w0, w1, w2] = widths[..] else { return None };
        let size = integer(&stream.dict, b"Size")?;
        let index: Vec<u64> = match stream.dict.get(b"Index") {
            Ok(Object::Array(index)) => {
                index.iter().map(|i| i.as_i64().ok().and_then(|i| u64::try_from(i).ok())).collect::<Option<_>>()?
            }
            Ok(_) => return None,
            Err(_) => vec![0, u64::try_from(size).ok()?],
        };
        let data = stream.decompressed_content_with_limit(MAX_DECODED).ok()?;
        let row = w0 + w1 + w2;
        let mut rows = data.chunks_exact(row.max(1));
        for pair in index.chunks(2) {
            let [first, count] = pair else { return None };
            for number in *first..first.checked_add(*count)? {
                let fields = rows.next()?;
                let field = |from: usize, width: usize| -> u64 {
                    fields[from..from + width].iter().fold(0, |n, b| (n << 8) | u64::from(*b))
                };
                // A missing type field means type 1 (§7.5.8.2, Table 17).
                let kind = if w0 == 0 { 1 } else { field(0, w0) };
                let (second, third) = (field(w0, w1), field(w0 + w1, w2));
                let entry = match kind {
                    0 => Entry::Free,
                    1 => Entry::At(usize::try_from(second).ok()?, u16::try_from(third).ok()?),
                    2 => Entry::Compressed { stream: u32::try_from(second).ok()?, index: usize::try_from(third).ok()? },
                    // Other types are references to the null object (§7.5.8.3).
                    _ => Entry::Free,
                };
                let number = u32::try_from(number).ok()?;
                if number != 0 {
                    self.entries.entry(number).or_insert(entry);
                }
            }
        }
        Some(stream.dict)
    }

    /// `n g obj … endobj` at the lexer, with a stream's bytes (its `/Length` direct or
    /// indirect).
    fn indirect_object(&mut self, lexer: &mut Lexer<'_>) -> Option<(ObjectId, Object)> {
        let number = u32::try_from(lexer.unsigned()?).ok()?;
        let generation = u16::try_from(lexer.unsigned()?).ok()?;
        lexer.skip_space();
        if !lexer.keyword(b"obj") {
            return None;
        }
        lexer.skip_space();
        let object = lexer.object(0)?;
        lexer.skip_space();
        let object = match object {
            Object::Dictionary(dict) if lexer.keyword(b"stream") => {
                // `stream` is followed by CRLF or LF (§7.3.8.1).
                if lexer.bytes.get(lexer.at) == Some(&b'\r') {
                    lexer.at += 1;
                }
                if lexer.bytes.get(lexer.at) != Some(&b'\n') {
                    return None;
                }
                lexer.at += 1;
                let length = match dict.get(b"Length").ok()? {
                    Object::Integer(n) => usize::try_from(*n).ok()?,
                    Object::Reference(id) if *id != (number, generation) => {
                        usize::try_from(self.object(*id)?.as_i64().ok()?).ok()?
                    }
                    _ => return None,
                };
                let end = lexer.at.checked_add(length)?;
                let content = lexer.bytes.get(lexer.at..end)?.to_vec();
                lexer.at = end;
                lexer.skip_space();
                if !lexer.keyword(b"endstream") {
                    return None;
                }
                let mut stream = Stream::new(dict, content);
                // Keep the dictionary as written (Stream::new sets /Length to the content's).
                stream.dict.set("Length", i64::try_from(length).ok()?);
                Object::Stream(stream)
            }
            object => object,
        };
        lexer.skip_space();
        lexer.keyword(b"endobj").then_some(((number, generation), object))
    }

    /// Object `id` as the cross-reference data places it; `None` when it cannot be read. A
    /// free or absent object is the null object (§7.3.10).
    fn object(&mut self, id: ObjectId) -> Option<Object> {
        match self.entries.get(&id.0).copied() {
            None | Some(Entry::Free) => Some(Object::Null),
            Some(Entry::At(offset, generation)) => {
                if generation != id.1 {
                    return Some(Object::Null);
                }
                let mut lexer = Lexer::at(self.pdf, offset);
                let (read, object) = self.indirect_object(&mut lexer)?;
                (read == id).then_some(object)
            }
            Some(Entry::Compressed { stream, index }) => {
                if id.1 != 0 {
                    return Some(Object::Null);
                }
                self.compressed(stream, index, id.0)
            }
        }
    }

    /// The `index`-th object of object stream `container`, which must be object `number`.
    fn compressed(&mut self, container: u32, index: usize, number: u32) -> Option<Object> {
        if !self.object_streams.contains_key(&container) {
            let Entry::At(..) = self.entries.get(&container).copied()? else { return None };
            let Object::Stream(stream) = self.object((container, 0))? else { return None };
            if !stream.dict.has_type(b"ObjStm") {
                return None;
            }
            let first = usize::try_from(integer(&stream.dict, b"First")?).ok()?;
            let content = stream.decompressed_content_with_limit(MAX_DECODED).ok()?;
            self.object_streams.insert(container, (first, content));
        }
        let (first, content) = self.object_streams.get(&container)?;
        let mut lexer = Lexer::at(content, 0);
        let mut offset = None;
        for i in 0..=index {
            let listed = u32::try_from(lexer.unsigned()?).ok()?;
            let at = lexer.unsigned()?;
            if i == index {
                offset = (listed == number).then_some(at);
            }
        }
        let mut lexer = Lexer::at(content, first.checked_add(offset?)?);
        lexer.skip_space();
        match lexer.object(0)? {
            Object::Stream(_) => None,
            object => Some(object),
        }
    }

    /// Reads `object` when it is a reference (keeping it), and answers the object it is.
    fn resolve(&mut self, object: &Object) -> Option<Object> {
        match object {
            Object::Reference(id) => {
                if let Some(read) = self.objects.get(id) {
                    return Some(read.clone());
                }
                let read = self.object(*id)?;
                self.objects.insert(*id, read.clone());
                Some(read)
            }
            direct => Some(direct.clone()),
        }
    }

    /// Reads the objects a signature update reads (see the module documentation).
    fn read_needed(&mut self, trailer: &Dictionary) -> Option<()> {
        let Ok(root) = trailer.get(b"Root") else { return None };
        let Object::Dictionary(catalog) = self.resolve(root)? else { return None };
        if let Ok(pages) = catalog.get(b"Pages") {
            self.first_page(pages)?;
        }
        if let Ok(form) = catalog.get(b"AcroForm") {
            if let Object::Dictionary(form) = self.resolve(form)? {
                if let Ok(fields) = form.get(b"Fields") {
                    if let Object::Array(fields) = self.resolve(fields)? {
                        for field in fields.iter().take(MAX_NODES) {
                            self.resolve(field)?;
                        }
                    }
                }
            }
        }
        if let Ok(perms) = catalog.get(b"Perms") {
            self.certification(perms)?;
        }
        Some(())
    }

    /// Reads the page tree from `pages` to its first page, depth first in order, with that
    /// page's `/Annots` (ISO 32000-1 §7.7.3).
    fn first_page(&mut self, pages: &Object) -> Option<()> {
        let mut stack = vec![pages.clone()];
        let mut visited = 0;
        while let Some(node) = stack.pop() {
            visited += 1;
            if visited > MAX_NODES {
                return None;
            }
            let Object::Dictionary(dictionary) = self.resolve(&node)? else { continue };
            if dictionary.has_type(b"Page") {
                if let Ok(annots) = dictionary.get(b"Annots") {
                    self.resolve(annots)?;
                }
                return Some(());
            }
            if let Ok(kids) = dictionary.get(b"Kids") {
                if let Object::Array(kids) = self.resolve(kids)? {
                    stack.extend(kids.into_iter().rev());
                }
            }
        }
        Some(())
    }

    /// Reads the `/Perms` → `/DocMDP` → `/Reference` → `/TransformParams` chain (ISO 32000-1
    /// §12.8.2.2, §12.8.4).
    fn certification(&mut self, perms: &Object) -> Option<()> {
        let Object::Dictionary(perms) = self.resolve(perms)? else { return Some(()) };
        let Ok(docmdp) = perms.get(b"DocMDP") else { return Some(()) };
        let Object::Dictionary(signature) = self.resolve(docmdp)? else { return Some(()) };
        let Ok(references) = signature.get(b"Reference") else { return Some(()) };
        let Object::Array(references) = self.resolve(references)? else { return Some(()) };
        for reference in references.iter().take(MAX_NODES) {
            if let Object::Dictionary(reference) = self.resolve(reference)? {
                if let Ok(params) = reference.get(b"TransformParams") {
                    self.resolve(params)?;
                }
            }
        }
        Some(())
    }
}

/// An array entry of `dictionary`, direct.
fn array<'d>(dictionary: &'d Dictionary, key: &[u8]) -> Option<&'d Vec<Object>> {
    dictionary.get(key).ok()?.as_array().ok()
}

/// An integer entry of `dictionary`, direct.
fn integer(dictionary: &Dictionary, key: &[u8]) -> Option<i64> {
    dictionary.get(key).ok()?.as_i64().ok()
}

/// The tokens of ISO 32000-1 §7.2–§7.3 over a byte slice; every read answers `None` on
/// anything it does not read exactly, never panics.
struct Lexer<'b> {
    bytes: &'b [u8],
    at: usize,
}

/// White-space characters (§7.2.2, Table 1).
fn is_space(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Delimiters (§7.2.2, Table 2).
fn is_delimiter(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

impl<'b> Lexer<'b> {
    fn at(bytes: &'b [u8], at: usize) -> Self {
        Self { bytes, at }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips white space and comments.
    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            if is_space(b) {
                self.at += 1;
            } else if b == b'%' {
                while let Some(b) = self.peek() {
                    if b == b'\r' || b == b'\n' {
                        break;
                    }
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    /// Consumes `word` when it is next and ends there (a regular character may not follow).
    fn keyword(&mut self, word: &[u8]) -> bool {
        let end = self.at + word.len();
        let matches = self.bytes.get(self.at..end) == Some(word)
            && self.bytes.get(end).is_none_or(|b| is_space(*b) || is_delimiter(*b));
        if matches {
            self.at = end;
        }
        matches
    }

    /// An unsigned integer after optional white space.
    fn unsigned(&mut self) -> Option<usize> {
        self.skip_space();
        let start = self.at;
        let mut n: usize = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
            self.at += 1;
        }
        (self.at > start).then_some(n)
    }

    /// One object (§7.3), `depth` arrays or dictionaries deep; a reference `n g R` for two
    /// integers followed by `R`. Streams are read by [`Sparse::indirect_object`].
    fn object(&mut self, depth: usize) -> Option<Object> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'/' => self.name().map(Object::Name),
            b'(' => self.literal_string().map(|s| Object::String(s, StringFormat::Literal)),
            b'<' if self.bytes.get(self.at + 1) == Some(&b'<') => {
                self.at += 2;
                let mut dictionary = Dictionary::new();
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at..self.at + 2) == Some(b">>") {
                        self.at += 2;
                        return Some(Object::Dictionary(dictionary));
                    }
                    let key = self.name()?;
                    let value = self.object(depth + 1)?;
                    dictionary.set(key, value);
                }
            }
            b'<' => self.hex_string().map(|s| Object::String(s, StringFormat::Hexadecimal)),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if self.peek()? == b']' {
                        self.at += 1;
                        return Some(Object::Array(items));
                    }
                    items.push(self.object(depth + 1)?);
                }
            }
            b't' if self.keyword(b"true") => Some(Object::Boolean(true)),
            b'f' if self.keyword(b"false") => Some(Object::Boolean(false)),
            b'n' if self.keyword(b"null") => Some(Object::Null),
            b'0'..=b'9' | b'+' | b'-' | b'.' => self.number_or_reference(),
            _ => None,
        }
    }

    /// A number, or a reference when it is an unsigned integer followed by another and `R`.
    fn number_or_reference(&mut self) -> Option<Object> {
        let start = self.at;
        let number = self.number()?;
        if let Object::Integer(n) = number {
            let digits_only = self.bytes.get(start).is_some_and(u8::is_ascii_digit);
            if digits_only {
                let after = self.at;
                if let Some(generation) = self.unsigned() {
                    self.skip_space();
                    if self.keyword(b"R") {
                        return Some(Object::Reference((u32::try_from(n).ok()?, u16::try_from(generation).ok()?)));
                    }
                }
                self.at = after;
            }
        }
        Some(number)
    }

    /// An integer or a real (§7.3.3).
    fn number(&mut self) -> Option<Object> {
        let start = self.at;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.at += 1;
        }
        let mut real = false;
        while let Some(b) = self.peek() {
            match b {
                b'0'..=b'9' => {}
                b'.' if !real => real = true,
                _ => break,
            }
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        if self.peek().is_some_and(|b| !is_space(b) && !is_delimiter(b)) {
            return None;
        }
        if real {
            let text = text.strip_suffix('.').unwrap_or(text);
            let text = text.strip_prefix('+').unwrap_or(text);
            let value: f64 = match text {
                "" | "-" => return None,
                t if t.starts_with('.') || t.starts_with("-.") => t.replacen('.', "0.", 1).parse().ok()?,
                t => t.parse().ok()?,
            };
            #[allow(clippy::cast_possible_truncation)]
            Some(Object::Real(value as f32))
        } else {
            text.strip_prefix('+').unwrap_or(text).parse().ok().map(Object::Integer)
        }
    }

    /// A name after its `/`, with `#xx` escapes decoded (§7.3.5).
    fn name(&mut self) -> Option<Vec<u8>> {
        if self.peek()? != b'/' {
            return None;
        }
        self.at += 1;
        let mut name = Vec::new();
        while let Some(b) = self.peek().filter(|b| !is_space(*b) && !is_delimiter(*b)) {
            if b == b'#' {
                let hex = self.bytes.get(self.at + 1..self.at + 3)?;
                name.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                self.at += 3;
            } else {
                name.push(b);
                self.at += 1;
            }
        }
        Some(name)
    }

    /// A literal string (§7.3.4.2): balanced parentheses, escapes, end-of-line markers read as
    /// a line feed.
    fn literal_string(&mut self) -> Option<Vec<u8>> {
        self.at += 1;
        let mut out = Vec::new();
        let mut open = 1usize;
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'(' => {
                    open += 1;
                    out.push(b);
                }
                b')' => {
                    open -= 1;
                    if open == 0 {
                        return Some(out);
                    }
                    out.push(b);
                }
                b'\r' => {
                    if self.peek() == Some(b'\n') {
                        self.at += 1;
                    }
                    out.push(b'\n');
                }
                b'\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'0'..=b'7' => {
                            let mut value = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        value = value * 8 + u32::from(d - b'0');
                                        self.at += 1;
                                    }
                                    _ => break,
                                }
                            }
                            // High-order overflow is ignored (§7.3.4.2).
                            out.push((value & 0xff) as u8);
                        }
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.at += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }

    /// A hexadecimal string (§7.3.4.3): white space ignored, an odd last digit followed by 0.
    fn hex_string(&mut self) -> Option<Vec<u8>> {
        self.at += 1;
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        loop {
            let b = self.peek()?;
            self.at += 1;
            let digit = match b {
                b'>' => {
                    if let Some(h) = high {
                        out.push(h << 4);
                    }
                    return Some(out);
                }
                b if is_space(b) => continue,
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return None,
            };
            match high.take() {
                Some(h) => out.push((h << 4) | digit),
                None => high = Some(digit),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Option<Object> {
        Lexer::at(text, 0).object(0)
    }

    #[test]
    fn the_object_syntax_reads_as_iso_32000_gives_it() {
        assert_eq!(parse(b"12 0 R"), Some(Object::Reference((12, 0))));
        assert_eq!(parse(b"-12"), Some(Object::Integer(-12)));
        assert_eq!(parse(b"+7"), Some(Object::Integer(7)));
        assert_eq!(parse(b"-.5"), Some(Object::Real(-0.5)));
        assert_eq!(parse(b"4."), Some(Object::Real(4.0)));
        assert_eq!(parse(b"/A#20B"), Some(Object::Name(b"A B".to_vec())));
        assert_eq!(
            parse(b"(a\\(b\\)\\n\\101\\\r\nc(d)\r\n)"),
            Some(Object::String(b"a(b)\nAc(d)\n".to_vec(), StringFormat::Literal))
        );
        assert_eq!(parse(b"<48 65 6c6C 6>"), Some(Object::String(b"Hell`".to_vec(), StringFormat::Hexadecimal)));
        let Some(Object::Dictionary(d)) = parse(b"<</Type/Page/Kids[1 0 R 2 0 R]/N null/B true%c\n/R 3 0 R>>") else {
            panic!("a dictionary");
        };
        assert_eq!(
            d.get(b"Kids").ok(),
            Some(&Object::Array(vec![Object::Reference((1, 0)), Object::Reference((2, 0))]))
        );
        assert_eq!(d.get(b"R").ok(), Some(&Object::Reference((3, 0))));
        assert_eq!(d.get(b"B").ok(), Some(&Object::Boolean(true)));
        assert_eq!(parse(b"[1 2]"), Some(Object::Array(vec![Object::Integer(1), Object::Integer(2)])));
    }

    #[test]
    fn what_is_not_read_exactly_is_not_read() {
        for text in [&b"(open"[..], b"<</A", b"[1 2", b"<4G>", b"/A#4", b"12abc", b"", b"]", b"{"] {
            assert_eq!(parse(text), None, "{:?}", String::from_utf8_lossy(text));
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(deep.as_bytes()), None, "nesting is bounded");
        assert!(load(b"%PDF-1.7\nnot a pdf").is_none());
        assert!(load(b"%PDF-1.7\nstartxref\n999999\n%%EOF").is_none());
    }
}
