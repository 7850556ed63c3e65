//! Which recording is exported next: the rules alone, without threads or the store, so that one
//! recording (or one account's many) cannot keep the others waiting.
//!
//! - At most `workers` exports run at once.
//! - An account has at most one export running: a second of its recordings waits even while a
//!   worker is free, so that a worker is always left for the next account's.
//! - Among the recordings that may start, the oldest first.
//! - What waits is what the store lists as `processing`, less what was dropped (a recording
//!   being deleted): a deleted recording's export never starts.

use std::collections::{HashMap, HashSet};

use tandem_actors::ids::AccountId;
use uuid::Uuid;

/// A recording waiting for its MP4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: Uuid,
    pub owner: AccountId,
    /// When the recording started (or was uploaded), Unix milliseconds: the oldest goes first.
    pub since: i64,
}

#[derive(Debug)]
pub struct ExportQueue {
    workers: usize,
    waiting: Vec<Job>,
    /// Running exports and their accounts.
    running: HashMap<Uuid, AccountId>,
    /// Recordings not to start (being deleted), until the store no longer lists them.
    dropped: HashSet<Uuid>,
}

impl ExportQueue {
    /// A queue running at most `workers` exports at once (at least one).
    pub fn new(workers: usize) -> Self {
        ExportQueue {
            workers: workers.max(1),
            waiting: Vec::new(),
            running: HashMap::new(),
            dropped: HashSet::new(),
        }
    }

    /// The recordings the store lists as waiting for export, in any order: they replace what
    /// waited, less those running or dropped. A dropped recording the store no longer lists is
    /// forgotten.
    pub fn listed(&mut self, jobs: Vec<Job>) {
        let ids: HashSet<Uuid> = jobs.iter().map(|j| j.id).collect();
        self.dropped.retain(|id| ids.contains(id));
        self.waiting = jobs
            .into_iter()
            .filter(|j| !self.running.contains_key(&j.id) && !self.dropped.contains(&j.id))
            .collect();
        self.waiting.sort_by_key(|j| (j.since, j.id));
    }

    /// A recording is being deleted: it will not start. Whether its export is running (then
    /// the caller stops it).
    pub fn drop_job(&mut self, id: Uuid) -> bool {
        self.dropped.insert(id);
        self.waiting.retain(|j| j.id != id);
        self.running.contains_key(&id)
    }

    /// A drop undone (the deletion failed and the recording stays): it may start again.
    pub fn undrop(&mut self, id: Uuid) {
        self.dropped.remove(&id);
    }

    /// The next export to start, now counted as running; `None` when every worker is busy or
    /// nothing waiting may start.
    pub fn start_next(&mut self) -> Option<Job> {
        if self.running.len() >= self.workers {
            return None;
        }
        let busy: HashSet<AccountId> = self.running.values().copied().collect();
        let i = self.waiting.iter().position(|j| !busy.contains(&j.owner))?;
        let job = self.waiting.remove(i);
        self.running.insert(job.id, job.owner);
        Some(job)
    }

    /// An export ended (done, failed or stopped): its worker is free.
    pub fn finished(&mut self, id: Uuid) {
        self.running.remove(&id);
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owner: AccountId, since: i64) -> Job {
        Job {
            id: Uuid::new_v4(),
            owner,
            since,
        }
    }

    #[test]
    fn oldest_first_one_per_account_and_no_more_than_the_workers() {
        let (a, b, c) = (
            AccountId::random(),
            AccountId::random(),
            AccountId::random(),
        );
        let mut q = ExportQueue::new(2);
        let (a1, a2, b1, c1) = (job(a, 1), job(a, 2), job(b, 3), job(c, 4));
        q.listed(vec![c1.clone(), b1.clone(), a2.clone(), a1.clone()]);
        assert_eq!(q.start_next(), Some(a1.clone()));
        // a2 is older than b1 but its account already has one running.
        assert_eq!(q.start_next(), Some(b1.clone()));
        assert_eq!(q.start_next(), None, "two workers");
        assert_eq!((q.running(), q.waiting()), (2, 2));
        q.finished(b1.id);
        assert_eq!(
            q.start_next(),
            Some(c1.clone()),
            "a's second still waits for its first"
        );
        assert_eq!(q.start_next(), None);
        q.finished(a1.id);
        // The store lists what is still processing; what runs is not started twice.
        q.listed(vec![a2.clone(), c1.clone()]);
        assert_eq!(q.start_next(), Some(a2.clone()));
        assert_eq!(q.start_next(), None);
    }

    #[test]
    fn one_account_alone_uses_one_worker_and_leaves_the_other_for_the_next() {
        let (a, b) = (AccountId::random(), AccountId::random());
        let mut q = ExportQueue::new(2);
        let many: Vec<Job> = (0..5).map(|i| job(a, i)).collect();
        q.listed(many.clone());
        assert_eq!(q.start_next(), Some(many[0].clone()));
        assert_eq!(q.start_next(), None);
        let late = job(b, 100);
        let mut all = many[1..].to_vec();
        all.push(late.clone());
        q.listed(all);
        assert_eq!(q.start_next(), Some(late));
    }

    #[test]
    fn a_dropped_recording_never_starts_and_a_running_one_is_reported() {
        let a = AccountId::random();
        let b = AccountId::random();
        let mut q = ExportQueue::new(1);
        let (a1, b1) = (job(a, 1), job(b, 2));
        q.listed(vec![a1.clone(), b1.clone()]);
        assert_eq!(q.start_next(), Some(a1.clone()));
        assert!(!q.drop_job(b1.id), "it was waiting");
        assert!(q.drop_job(a1.id), "it is running: the caller stops it");
        q.finished(a1.id);
        // Listed again before its row is gone: still not started.
        q.listed(vec![a1.clone(), b1.clone()]);
        assert_eq!(q.start_next(), None);
        // Its row is gone, then (another recording with) the id is listed: forgotten.
        q.listed(vec![]);
        q.listed(vec![b1.clone()]);
        assert_eq!(q.start_next(), Some(b1.clone()));
        q.finished(b1.id);
        // A deletion that failed gives the recording back.
        q.drop_job(b1.id);
        q.listed(vec![b1.clone()]);
        assert_eq!(q.start_next(), None);
        q.undrop(b1.id);
        q.listed(vec![b1.clone()]);
        assert_eq!(q.start_next(), Some(b1));
    }
}
