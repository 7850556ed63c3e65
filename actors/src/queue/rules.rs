//! The rules of one queue: who waits, in what order, and which agents may take them.
//!
//! Sessions transferred to a queue wait in arrival order; any agent of the queue takes the next.
//! A session transferred to named agents waits on the same kind of list with its own short list
//! of who may take it (SPEC S8).

use std::collections::{BTreeSet, VecDeque};

use crate::ids::{AccountId, SessionId};
use crate::protocol::UnixMillis;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Waiting {
    pub session: SessionId,
    pub message: Option<String>,
    pub since: UnixMillis,
    /// `None`: any agent of the queue. `Some`: only these agents.
    pub eligible: Option<Vec<AccountId>>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueRefusal {
    #[error("nobody is waiting that you may take")]
    NothingWaiting,
    #[error("that session is not waiting here, or is not offered to you")]
    NotOffered,
}

impl QueueRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NothingWaiting => "nothing_waiting",
            Self::NotOffered => "not_offered",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct QueueRules {
    agents: BTreeSet<AccountId>,
    waiting: VecDeque<Waiting>,
}

impl QueueRules {
    pub fn new(agents: impl IntoIterator<Item = AccountId>) -> Self {
        Self {
            agents: agents.into_iter().collect(),
            waiting: VecDeque::new(),
        }
    }

    pub fn set_agents(&mut self, agents: impl IntoIterator<Item = AccountId>) {
        self.agents = agents.into_iter().collect();
    }

    pub fn enqueue(&mut self, w: Waiting) {
        self.waiting.retain(|x| x.session != w.session);
        self.waiting.push_back(w);
    }

    /// A session that ended, or was taken elsewhere, stops waiting.
    pub fn remove(&mut self, session: SessionId) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|x| x.session != session);
        before != self.waiting.len()
    }

    pub fn may_take(&self, agent: AccountId, w: &Waiting) -> bool {
        match &w.eligible {
            Some(list) => list.contains(&agent),
            None => self.agents.contains(&agent),
        }
    }

    /// What `agent` could take, oldest first.
    pub fn offered_to(&self, agent: AccountId) -> Vec<Waiting> {
        self.waiting
            .iter()
            .filter(|w| self.may_take(agent, w))
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Takes the oldest entry `agent` may take.
    pub fn take_next(&mut self, agent: AccountId) -> Result<Waiting, QueueRefusal> {
        let i = self
            .waiting
            .iter()
            .position(|w| self.may_take(agent, w))
            .ok_or(QueueRefusal::NothingWaiting)?;
        Ok(self.waiting.remove(i).expect("index from position()"))
    }

    /// Takes one named entry.
    pub fn take(&mut self, agent: AccountId, session: SessionId) -> Result<Waiting, QueueRefusal> {
        let i = self
            .waiting
            .iter()
            .position(|w| w.session == session && self.may_take(agent, w))
            .ok_or(QueueRefusal::NotOffered)?;
        Ok(self.waiting.remove(i).expect("index from position()"))
    }

    /// Puts an entry back at the front, when taking it failed further on.
    pub fn put_back(&mut self, w: Waiting) {
        self.waiting.push_front(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(eligible: Option<Vec<AccountId>>, since: UnixMillis) -> Waiting {
        Waiting {
            session: SessionId::random(),
            message: None,
            since,
            eligible,
        }
    }

    #[test]
    fn agents_of_the_queue_take_in_arrival_order_others_cannot() {
        let (a, outsider) = (AccountId::random(), AccountId::random());
        let mut q = QueueRules::new([a]);
        let first = waiting(None, 1);
        let second = waiting(None, 2);
        q.enqueue(first.clone());
        q.enqueue(second.clone());
        assert_eq!(q.take_next(outsider), Err(QueueRefusal::NothingWaiting));
        assert_eq!(q.take_next(a).unwrap(), first);
        assert_eq!(q.take_next(a).unwrap(), second);
        assert_eq!(q.take_next(a), Err(QueueRefusal::NothingWaiting));
    }

    #[test]
    fn an_offer_to_named_agents_is_for_them_only() {
        let (a, b, c) = (
            AccountId::random(),
            AccountId::random(),
            AccountId::random(),
        );
        let mut q = QueueRules::new([]);
        let w = waiting(Some(vec![a, b]), 1);
        q.enqueue(w.clone());
        assert!(q.offered_to(c).is_empty());
        assert_eq!(q.take(c, w.session), Err(QueueRefusal::NotOffered));
        assert_eq!(q.offered_to(b), vec![w.clone()]);
        assert_eq!(q.take(b, w.session).unwrap(), w);
        assert_eq!(q.take(a, w.session), Err(QueueRefusal::NotOffered));
    }

    #[test]
    fn removed_sessions_stop_waiting() {
        let a = AccountId::random();
        let mut q = QueueRules::new([a]);
        let w = waiting(None, 1);
        q.enqueue(w.clone());
        assert!(q.remove(w.session));
        assert!(q.is_empty());
        assert!(!q.remove(w.session));
    }
}
