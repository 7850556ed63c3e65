//! One account's upload quota, kept while uploads are under way. The stored recordings say
//! what an account's uploads hold only once they are finished, so two uploads checked against
//! them at once could each take the last room and together overshoot the quota by a whole
//! upload. Each upload therefore reserves its room (what it declared, or for a body of unknown
//! length all the room left, up to the largest upload) before its body is read, beside the
//! room reserved by the others; the reservation is given back when the upload fails (on drop)
//! or when its recording is stored.
//!
//! Reserving reads the store, so it is not atomic with the other uploads by itself: reserving
//! and storing a finished upload (which moves its bytes from the reservations to the store) go
//! through one gate, one at a time. Both are short (a query; two writes) and uploads are rare,
//! so one gate for the whole server costs nothing noticeable and keeps the sums exact (a
//! gate per account would need a map of gates that is never emptied).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tandem_actors::ids::AccountId;

use crate::store::UploadUsage;

/// What one account's uploads may hold, and the largest upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub max_bytes: u64,
    pub max_files: u64,
    pub max_upload: u64,
}

/// The upload does not fit: what the account's uploads hold, those under way included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Over(pub UploadUsage);

impl Quota {
    /// The bytes an upload of `declared` bytes (`None`: not said) reserves beside `usage`,
    /// what the account's uploads hold and reserve already; or why it does not fit.
    pub fn room(&self, usage: UploadUsage, declared: Option<u64>) -> Result<u64, Over> {
        let left = self.max_bytes.saturating_sub(usage.bytes);
        if usage.files >= self.max_files || usage.bytes > self.max_bytes {
            return Err(Over(usage));
        }
        match declared {
            Some(n) if n > left => Err(Over(usage)),
            Some(n) => Ok(n),
            None => Ok(left.min(self.max_upload)),
        }
    }
}

/// What the uploads under way have reserved, per account.
type Reserved = Arc<Mutex<HashMap<AccountId, UploadUsage>>>;

/// The reservations of the uploads under way, and the gate (see the module's comment).
#[derive(Default)]
pub struct UploadRoom {
    gate: tokio::sync::Mutex<()>,
    reserved: Reserved,
}

impl UploadRoom {
    /// Reserves room for an upload of `declared` bytes by `owner`, whose stored uploads
    /// `stored` reads; answers the reservation, or why it does not fit (or the store's error).
    pub async fn reserve<E>(
        &self,
        owner: AccountId,
        quota: Quota,
        declared: Option<u64>,
        stored: impl Future<Output = Result<UploadUsage, E>>,
    ) -> Result<Result<Reservation, Over>, E> {
        let _gate = self.gate.lock().await;
        let stored = stored.await?;
        let mut reserved = self.reserved.lock().expect("upload reservations poisoned");
        let under_way = reserved.get(&owner).copied().unwrap_or_default();
        let usage = UploadUsage {
            bytes: stored.bytes.saturating_add(under_way.bytes),
            files: stored.files + under_way.files,
        };
        let bytes = match quota.room(usage, declared) {
            Ok(bytes) => bytes,
            Err(over) => return Ok(Err(over)),
        };
        let mine = reserved.entry(owner).or_default();
        mine.bytes = mine.bytes.saturating_add(bytes);
        mine.files += 1;
        Ok(Ok(Reservation {
            reserved: self.reserved.clone(),
            owner,
            bytes,
            beside: usage,
        }))
    }

    /// Runs `store` (which stores the finished upload) and then gives back `reservation`,
    /// with no reservation made meanwhile: none can see the upload neither reserved nor stored.
    pub async fn settle<T>(&self, reservation: Reservation, store: impl Future<Output = T>) -> T {
        let _gate = self.gate.lock().await;
        let stored = store.await;
        drop(reservation);
        stored
    }
}

/// One upload's room, given back when dropped.
pub struct Reservation {
    reserved: Reserved,
    owner: AccountId,
    bytes: u64,
    /// What the account's uploads held and reserved beside it.
    beside: UploadUsage,
}

impl Reservation {
    /// Whether `written` bytes fit in the room reserved, or why not.
    pub fn fits(&self, written: u64) -> Result<(), Over> {
        if written > self.bytes {
            return Err(Over(self.beside));
        }
        Ok(())
    }

    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = self.reserved.lock().expect("upload reservations poisoned");
        if let Some(r) = reserved.get_mut(&self.owner) {
            r.bytes = r.bytes.saturating_sub(self.bytes);
            r.files = r.files.saturating_sub(1);
            if r.files == 0 {
                // Forgotten at zero: the map holds only accounts with uploads under way.
                reserved.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota {
        max_bytes: 100,
        max_files: 2,
        max_upload: 60,
    };

    fn usage(bytes: u64, files: u64) -> UploadUsage {
        UploadUsage { bytes, files }
    }

    #[test]
    fn an_upload_reserves_what_it_declares_or_the_room_left_up_to_the_largest_upload() {
        assert_eq!(QUOTA.room(usage(0, 0), Some(100)), Ok(100));
        assert_eq!(QUOTA.room(usage(50, 1), Some(50)), Ok(50));
        assert_eq!(QUOTA.room(usage(50, 1), Some(51)), Err(Over(usage(50, 1))));
        assert_eq!(QUOTA.room(usage(0, 0), None), Ok(60));
        assert_eq!(QUOTA.room(usage(70, 1), None), Ok(30));
        assert_eq!(QUOTA.room(usage(100, 1), None), Ok(0));
        assert_eq!(
            QUOTA.room(usage(0, 2), Some(0)),
            Err(Over(usage(0, 2))),
            "files"
        );
        assert!(QUOTA.room(usage(101, 1), None).is_err());
        let huge = Quota {
            max_bytes: u64::MAX - 1,
            ..QUOTA
        };
        assert!(huge.room(usage(u64::MAX - 1, 0), Some(1)).is_err());
    }

    async fn reserve(
        room: &UploadRoom,
        owner: AccountId,
        declared: Option<u64>,
        stored: UploadUsage,
    ) -> Result<Reservation, Over> {
        room.reserve(owner, QUOTA, declared, async {
            Ok::<_, std::convert::Infallible>(stored)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn uploads_under_way_count_against_the_quota_until_given_back() {
        let room = UploadRoom::default();
        let (carol, ann) = (AccountId::random(), AccountId::random());
        let first = reserve(&room, carol, Some(60), usage(0, 0)).await.unwrap();
        let over = reserve(&room, carol, Some(60), usage(0, 0)).await;
        assert_eq!(over.err(), Some(Over(usage(60, 1))));
        // Another account has its own room; a body of unknown length takes what is left.
        assert!(reserve(&room, ann, Some(100), usage(0, 0)).await.is_ok());
        let rest = reserve(&room, carol, None, usage(0, 0)).await.unwrap();
        assert_eq!(rest.bytes(), 40);
        drop(rest);
        // A failed upload gives its room back.
        drop(first);
        assert!(room.reserved.lock().unwrap().get(&carol).is_none());
        assert!(reserve(&room, carol, Some(100), usage(0, 0)).await.is_ok());
    }

    #[tokio::test]
    async fn a_stored_upload_moves_from_the_reservations_to_the_store() {
        let room = UploadRoom::default();
        let carol = AccountId::random();
        let first = reserve(&room, carol, Some(60), usage(0, 0)).await.unwrap();
        let stored = room.settle(first, async { usage(60, 1) }).await;
        assert!(room.reserved.lock().unwrap().is_empty());
        let over = reserve(&room, carol, Some(60), stored).await;
        assert_eq!(over.err(), Some(Over(usage(60, 1))));
    }
}
