-- Why an approver refused a reveal request (or a note with an approval), shown to the
-- requester. Checked like a purpose: no personal number, no control characters.
ALTER TABLE reveal_requests ADD COLUMN decision_reason TEXT;
