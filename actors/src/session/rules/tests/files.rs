//! SPEC F1: files the primary CSR publishes to a customer live only while file transfer with
//! that customer runs, reach only that customer, and survive a restore.

use super::*;

fn shared(customer: ParticipantId, by: ParticipantId, name: &str) -> SharedFile {
    SharedFile {
        customer,
        by,
        name: name.into(),
        size: 3,
        sha256: "ab".repeat(32),
        at: 0,
    }
}

impl World {
    fn publish(
        &mut self,
        by: ParticipantId,
        to: ParticipantId,
        name: &str,
    ) -> Result<FileId, &'static str> {
        self.now += 1000;
        let id = FileId::random();
        let recs = self
            .rules
            .publish_file(self.now, by, id, shared(to, by, name))
            .map_err(|r| r.code())?;
        self.journal.extend(recs);
        Ok(id)
    }

    fn files_seen_by(&self, viewer: ParticipantId) -> usize {
        self.rules.view(Some(Role::Customer), Some(viewer))["files"]
            .as_array()
            .unwrap()
            .len()
    }
}

#[test]
fn a_file_is_published_only_while_its_customer_allowed_file_transfer_and_only_to_them() {
    let (mut w, dave) = World::with_customer("Dave");
    let erin = w.join(Role::Customer, "Erin");
    w.cmd(w.csr, select(dave)).unwrap();
    assert_eq!(w.publish(w.csr, dave, "a.txt"), Err("activity_not_running"));
    w.grant(dave, Activity::FileTransfer);
    let file = w.publish(w.csr, dave, "a.txt").unwrap();
    let last = w.journal.last().unwrap().event.clone();
    assert_eq!(last.audience(), Audience::StaffAnd(vec![dave]));
    assert_eq!((w.files_seen_by(dave), w.files_seen_by(erin)), (1, 0));
    // Not to a customer without file transfer, not by a customer.
    assert_eq!(w.publish(w.csr, erin, "b.txt"), Err("activity_not_running"));
    assert_eq!(w.publish(dave, dave, "b.txt"), Err("not_primary"));
    assert_eq!(w.restored().view(None, None), w.rules.view(None, None));
    // Withdrawn by the primary only.
    let withdraw = Command::WithdrawFile { file };
    assert_eq!(w.cmd(dave, withdraw.clone()), Err("not_primary"));
    assert_eq!(
        w.cmd(w.csr, withdraw.clone()).unwrap(),
        vec![Event::FileWithdrawn {
            file,
            customer: dave
        }]
    );
    assert_eq!(w.cmd(w.csr, withdraw), Err("unknown_file"));
    assert!(w.rules.shared_files().is_empty());
}

#[test]
fn ending_file_transfer_or_leaving_takes_the_files_back_and_a_restore_agrees() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    w.grant(dave, Activity::FileTransfer);
    w.publish(w.csr, dave, "one").unwrap();
    w.publish(w.csr, dave, "two").unwrap();
    assert_eq!(w.rules.shared_files().len(), 2);
    w.cmd(w.csr, stop(Activity::FileTransfer)).unwrap();
    assert!(w.rules.shared_files().is_empty());
    assert!(w.restored().shared_files().is_empty());

    w.grant(dave, Activity::FileTransfer);
    w.publish(w.csr, dave, "three").unwrap();
    assert_eq!(w.restored().shared_files().len(), 1);
    w.cmd(dave, Command::Leave).unwrap();
    assert!(w.rules.shared_files().is_empty());
    assert!(w.restored().shared_files().is_empty());
}

#[test]
fn names_that_are_paths_and_a_twenty_first_file_are_refused() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    w.grant(dave, Activity::FileTransfer);
    let long = "é".repeat(128);
    for bad in ["", " ", ".", "..", "../up", "a/b", "a\\b", "nl\n", &long] {
        assert_eq!(w.publish(w.csr, dave, bad), Err("bad_file_name"), "{bad:?}");
    }
    for ok in ["..hidden", "報告 (1).pdf", "a.b.c", &"é".repeat(127)] {
        w.publish(w.csr, dave, ok).unwrap();
    }
    for i in 4..crate::limits::MAX_SHARED_FILES {
        w.publish(w.csr, dave, &format!("f{i}")).unwrap();
    }
    assert_eq!(w.publish(w.csr, dave, "one more"), Err("too_many_files"));
}
