-- A document resource deleted with O11 leaves the (no longer pending) processes that used it;
-- O11 itself refuses while a pending process uses the document.
ALTER TABLE process_documents DROP CONSTRAINT process_documents_document_id_fkey;
ALTER TABLE process_documents
    ADD CONSTRAINT process_documents_document_id_fkey
    FOREIGN KEY (document_id) REFERENCES documents (id) ON DELETE CASCADE;
