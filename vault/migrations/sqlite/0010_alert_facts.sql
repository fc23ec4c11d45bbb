-- Alerts carry their facts (rule, attribute names, targets and locators, attempts) as
-- JSON beside the English detail, so that every page can state them in its reader's
-- language. Never a value read from or written to a target. NULL for alerts raised
-- before this release: those show their English detail.
ALTER TABLE prov_alerts ADD COLUMN facts TEXT;
