//! SPEC F2: operations on a customer's computer's files go to its helper only from the primary
//! CSR, while file transfer runs with that customer (S9, and so F3) and the helper said it can;
//! only that computer answers them; a restored session knows what is still waiting.

use super::*;
use crate::computer_files::{FilesRequest, FilesResult, MAX_PENDING_OPS};

fn list() -> FilesRequest {
    FilesRequest::List {
        path: String::new(),
    }
}

fn ended(ok: bool) -> FilesResult {
    FilesResult {
        ok,
        refused: !ok,
        message: "done".into(),
        listing: None,
        folder: None,
        truncated: false,
        batch: None,
    }
}

impl World {
    fn files(&mut self, by: ParticipantId, r: FilesRequest) -> Result<u32, &'static str> {
        self.now += 1000;
        let (op, recs) = self
            .rules
            .request_computer_files(self.now, by, r)
            .map_err(|r| r.code())?;
        self.journal.extend(recs);
        Ok(op)
    }
}

#[test]
fn operations_need_file_transfer_a_helper_that_can_and_the_primary() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    assert_eq!(w.files(w.csr, list()), Err("activity_not_running"));
    w.grant(dave, Activity::FileTransfer);
    assert_eq!(w.files(w.csr, list()), Err("helper_required"));
    // A helper that did not say it can is no helper for files.
    w.attach_computer(dave);
    assert_eq!(w.files(w.csr, list()), Err("helper_required"));
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    let computer = w.attach_able_computer(dave, vec![Activity::FileTransfer]);
    w.grant(dave, Activity::FileTransfer);
    assert_eq!(w.files(dave, list()), Err("not_primary"));
    let escape = FilesRequest::List {
        path: "../..".into(),
    };
    assert_eq!(w.files(w.csr, escape), Err("path_escapes"));
    let op = w.files(w.csr, list()).unwrap();
    let Event::ComputerFilesRequested {
        computer: to,
        customer,
        ..
    } = &w.journal.last().unwrap().event
    else {
        panic!("{:?}", w.journal.last());
    };
    assert_eq!((*to, *customer), (computer, dave));
    assert_eq!(
        w.journal.last().unwrap().event.audience(),
        Audience::StaffAnd(vec![computer]),
        "the customer's page is not sent the CSR's request"
    );
    // Only that computer answers, once.
    assert_eq!(
        w.rules
            .computer_files_done(w.now, dave, op, ended(true))
            .map_err(|r| r.code()),
        Err("unknown_files_op")
    );
    let recs = w
        .rules
        .computer_files_done(w.now, computer, op, ended(true))
        .unwrap();
    assert!(matches!(
        &recs[0].event,
        Event::ComputerFilesDone { op: o, by, .. } if *o == op && *by == w.csr
    ));
    w.journal.extend(recs);
    assert_eq!(
        w.rules
            .computer_files_done(w.now, computer, op, ended(true))
            .map_err(|r| r.code()),
        Err("unknown_files_op")
    );
}

#[test]
fn waiting_operations_are_bounded_survive_a_restore_and_end_with_file_transfer() {
    let (mut w, dave) = World::with_customer("Dave");
    w.cmd(w.csr, select(dave)).unwrap();
    let computer = w.attach_able_computer(dave, vec![Activity::FileTransfer]);
    w.grant(dave, Activity::FileTransfer);
    let ops: Vec<u32> = (0..MAX_PENDING_OPS)
        .map(|_| w.files(w.csr, list()).unwrap())
        .collect();
    assert_eq!(w.files(w.csr, list()), Err("too_many_files_ops"));
    // A cancel still goes: it is how the CSR gets out of a stuck transfer.
    let cancel = FilesRequest::Cancel { target: ops[0] };
    assert!(w.files(w.csr, cancel).is_ok());
    assert_eq!(
        w.files(w.csr, FilesRequest::Cancel { target: 999 }),
        Err("unknown_files_op")
    );
    let restored = w.restored();
    assert_eq!(
        restored.files_op(ops[3]).map(|o| o.computer),
        Some(computer)
    );
    w.cmd(w.csr, stop(Activity::FileTransfer)).unwrap();
    assert!(w.rules.files_op(ops[3]).is_none());
    assert_eq!(
        w.rules
            .computer_files_done(w.now, computer, ops[3], ended(false))
            .map_err(|r| r.code()),
        Err("unknown_files_op")
    );
}
