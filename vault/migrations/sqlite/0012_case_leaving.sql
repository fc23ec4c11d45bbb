-- The day the pupil left (given when a case is ended as its own step); the case's
-- ending day stays `ended_on`, from which the retention periods count.
ALTER TABLE cases ADD COLUMN left_on TEXT;
