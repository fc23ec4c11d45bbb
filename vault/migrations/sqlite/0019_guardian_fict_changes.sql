-- A change of a registered case's fictitious identity is for the pupil or for one of
-- the linked guardians (`guardian-N`): the same queue, the same registration, the
-- accounts rewritten in place.
ALTER TABLE fict_changes ADD COLUMN subject TEXT NOT NULL DEFAULT 'pupil';
