#!/usr/bin/env python3
"""Keyword search cost (issue 15 item 10): the scan Tandem used before migration 0005 (LIKE over
every session's topic, number, notes and participants) against the FTS5 trigram index it reads
now, on one SQLite file built with Tandem's own migrations and N synthetic sessions.

    python3 loadtest/scripts/search_bench.py [sessions] [runs]

The two queries are copies of src/store/journal.rs's (old and new); docs/performance.md has
the figures."""
import glob, os, random, sqlite3, statistics, sys, tempfile, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")

OLD = """SELECT s.*, u.display_name AS host_name FROM sessions s JOIN users u ON u.id = s.host_id
 WHERE (?1 IS NULL OR s.topic LIKE ?1 ESCAPE '\\' OR s.number LIKE ?1 ESCAPE '\\' OR u.display_name LIKE ?1 ESCAPE '\\'
        OR s.notes LIKE ?1 ESCAPE '\\'
        OR EXISTS (SELECT 1 FROM participants p WHERE p.session_id = s.id AND p.name LIKE ?1 ESCAPE '\\'))
 ORDER BY s.created_at DESC LIMIT 50"""
NEW = """SELECT s.*, u.display_name AS host_name FROM sessions s JOIN users u ON u.id = s.host_id
 WHERE (?1 IS NULL OR u.display_name LIKE ?1 ESCAPE '\\'
        OR s.rowid IN (SELECT rowid FROM session_search WHERE session_search MATCH ?2))
 ORDER BY s.created_at DESC LIMIT 50"""

WORDS = "printer vpn outlook password reset laptop screen driver update network wifi".split()

def build(path):
    db = sqlite3.connect(path)
    for m in sorted(glob.glob(os.path.join(ROOT, "migrations", "*.sql"))):
        db.executescript(open(m).read())
    db.execute("INSERT INTO users (id, username, display_name, email, password_hash, role, created_at)"
               " VALUES ('u1', 'carol', 'Carol', 'c@example.com', 'x', 'csr', 0)")
    rnd = random.Random(1)
    for i in range(N):
        sid = f"s{i}"
        notes = " ".join(rnd.choice(WORDS) for _ in range(150))
        db.execute("INSERT INTO sessions (id, number, topic, host_id, max_customers, status, created_at, notes)"
                   " VALUES (?, ?, ?, 'u1', 1, 'ended', ?, ?)",
                   (sid, f"{rnd.randrange(10**8):08}", " ".join(rnd.sample(WORDS, 3)), i, notes))
        for j in range(2):
            db.execute("INSERT INTO participants (session_id, participant_id, role, name, joined_at)"
                       " VALUES (?, ?, 'customer', ?, ?)", (sid, f"p{j}", f"Customer {rnd.randrange(10**6)}", i))
        db.execute("INSERT INTO session_search (rowid, body) SELECT s.rowid, s.topic || char(10) ||"
                   " s.number || char(10) || coalesce((SELECT group_concat(p.name, char(10))"
                   " FROM participants p WHERE p.session_id = s.id), '') || char(10) || s.notes"
                   " FROM sessions s WHERE s.id = ?", (sid,))
    db.commit()
    return db

def timed(db, sql, args):
    spans = []
    for _ in range(RUNS):
        t = time.perf_counter()
        db.execute(sql, args).fetchall()
        spans.append((time.perf_counter() - t) * 1000)
    return spans

with tempfile.TemporaryDirectory() as d:
    db = build(os.path.join(d, "t.db"))
    print(f"{N} sessions, 150 words of notes and 2 participants each; {RUNS} runs per query; ms median (min-max)")
    for q in ["Customer 4242", "zebra", "x" * 200]:
        like, phrase = f"%{q}%", '"' + q.replace('"', '""') + '"'
        for name, sql, args in [("scan (before)", OLD, (like,)), ("index (now)", NEW, (like, phrase))]:
            s = timed(db, sql, args)
            print(f"{q[:20]!r:24} {name:14} {statistics.median(s):9.1f} ({min(s):.1f}-{max(s):.1f})")
