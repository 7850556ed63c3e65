//! SPEC F2: the primary CSR works on a customer's computer's files through Tandem Helper:
//! lists folders, makes, deletes and renames, and moves batches either way. Allowed only while
//! file transfer runs with that customer (their S9 consent, and F3: never beside application
//! sharing) and their helper said it can; the helper asks the customer again for each
//! operation unless their screen is shared, and answers how it ended.

use super::*;
use crate::computer_files::{FilesRequest, FilesResult, MAX_PENDING_OPS};

/// An operation sent to a computer, until it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOp {
    pub customer: ParticipantId,
    pub computer: ParticipantId,
    pub by: ParticipantId,
    pub kind: &'static str,
}

impl SessionRules {
    /// The primary CSR `by` asks the selected customer's computer for `request`. Returns the
    /// operation's number with the records.
    pub fn request_computer_files(
        &mut self,
        now: UnixMillis,
        by: ParticipantId,
        request: FilesRequest,
    ) -> Result<(u32, Vec<Record>), Refusal> {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        self.require_primary(by)?;
        let customer = self.selected.ok_or(Refusal::NoCustomerSelected)?;
        if !self.running.contains(&(Activity::FileTransfer, customer)) {
            return Err(Refusal::ActivityNotRunning);
        }
        if !self.computer_can(customer, Activity::FileTransfer) {
            return Err(Refusal::HelperRequired);
        }
        let computer = self.computer_for(customer).ok_or(Refusal::HelperRequired)?;
        request.check().map_err(Refusal::BadFilesRequest)?;
        if let FilesRequest::Cancel { target } = &request
            && self
                .files_ops
                .get(target)
                .is_none_or(|o| o.computer != computer)
        {
            return Err(Refusal::UnknownFilesOp);
        }
        let waiting = self
            .files_ops
            .values()
            .filter(|o| o.customer == customer)
            .count();
        if waiting >= MAX_PENDING_OPS && !matches!(request, FilesRequest::Cancel { .. }) {
            return Err(Refusal::TooManyFilesOps);
        }
        let op = self.next_files_op;
        let mut out = Vec::new();
        let event = Event::ComputerFilesRequested {
            op,
            customer,
            computer,
            by,
            request,
        };
        self.emit(now, event, &mut out);
        Ok((op, out))
    }

    /// `computer` says how operation `op` ended.
    pub fn computer_files_done(
        &mut self,
        now: UnixMillis,
        computer: ParticipantId,
        op: u32,
        result: FilesResult,
    ) -> Outcome {
        if self.is_ended() {
            return Err(Refusal::SessionEnded);
        }
        result.check().map_err(Refusal::BadFilesRequest)?;
        let pending = self
            .files_ops
            .get(&op)
            .filter(|o| o.computer == computer)
            .ok_or(Refusal::UnknownFilesOp)?
            .clone();
        let mut out = Vec::new();
        let event = Event::ComputerFilesDone {
            op,
            customer: pending.customer,
            computer,
            by: pending.by,
            result,
        };
        self.emit(now, event, &mut out);
        Ok(out)
    }

    /// The computer that operation `op` was sent to and its customer, while it runs (the
    /// server checks batches against it).
    pub fn files_op(&self, op: u32) -> Option<&PendingOp> {
        self.files_ops.get(&op)
    }
}
