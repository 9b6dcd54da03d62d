-- A document belongs to every process that uses it for as long as that process exists
-- (SPEC O11: "a finished process keeps its record whole").
--
-- 20261129000002 made this key ON DELETE CASCADE so that O11 could delete a document out of
-- processes that were no longer pending; a finished process then listed one document fewer
-- and lost that document's result after the fact. O11 now answers 409 while any process
-- holds the document, and the schema refuses the deletion as well, so no path (nor a
-- concurrent O1 that references the document) can take a document out of a process. A
-- process's documents go with it when the process is deleted (O3): its process_documents
-- rows cascade from signer_processes first.
ALTER TABLE process_documents DROP CONSTRAINT process_documents_document_id_fkey;
ALTER TABLE process_documents
    ADD CONSTRAINT process_documents_document_id_fkey
    FOREIGN KEY (document_id) REFERENCES documents (id) ON DELETE RESTRICT;
