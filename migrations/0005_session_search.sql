-- Keyword search of sessions (SPEC A2) through an index instead of scanning every session's
-- notes and participants with LIKE: one document per session (rowid = the session's rowid),
-- its topic, number, participants' names and notes. The trigram tokenizer matches any
-- substring of three characters or more, as LIKE '%q%' did, case-insensitively.
CREATE VIRTUAL TABLE session_search USING fts5(body, tokenize = 'trigram');

INSERT INTO session_search (rowid, body)
SELECT s.rowid,
       s.topic || char(10) || s.number || char(10) ||
       coalesce((SELECT group_concat(p.name, char(10)) FROM participants p WHERE p.session_id = s.id), '') ||
       char(10) || s.notes
FROM sessions s;
