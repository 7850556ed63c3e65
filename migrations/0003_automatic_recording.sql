-- SPEC R3: whether a session was started with automatic recording on (the admin setting as it
-- was then), so the stored session says how it was recorded.
ALTER TABLE sessions ADD COLUMN automatic_recording INTEGER NOT NULL DEFAULT 0;
