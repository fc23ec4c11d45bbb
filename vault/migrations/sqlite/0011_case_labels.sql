-- A school's own label of a case (to tell its protected pupils apart without showing a
-- real identity), sealed with the case's plan key like the plan (shredded with it).
-- Shown to the case's unit only.
ALTER TABLE cases ADD COLUMN label_dk BIGINT;
ALTER TABLE cases ADD COLUMN label_sealed BLOB;
