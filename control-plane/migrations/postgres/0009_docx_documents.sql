-- Training documents may be DOCX too.

ALTER TABLE training_document DROP CONSTRAINT training_document_kind_check;
ALTER TABLE training_document ADD CONSTRAINT training_document_kind_check
    CHECK (kind IN ('pdf', 'docx', 'markdown', 'text', 'html'));
