//! An MIT-SHM segment: memory shared with the X server, which writes captured images into it
//! (no copy through the socket). A memfd passed to the server (SHM 1.2), mapped here.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr::NonNull;

use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use crate::platform::PlatformError;

pub(super) struct Segment {
    pub(super) seg: shm::Seg,
    ptr: NonNull<c_void>,
    len: usize,
}

impl Segment {
    /// Whether the server can take a memfd (SHM 1.2 or later).
    pub(super) fn supported(conn: &RustConnection) -> bool {
        let Ok(cookie) = conn.shm_query_version() else {
            return false;
        };
        cookie
            .reply()
            .is_ok_and(|v| (v.major_version, v.minor_version) >= (1, 2))
    }

    /// A new segment of `len` bytes, attached to the server.
    pub(super) fn new(conn: &RustConnection, len: usize) -> Result<Segment, PlatformError> {
        let io = |e: rustix::io::Errno| PlatformError::Protocol(format!("shared memory: {e}"));
        let fd = memfd_create("tandem-helper-capture", MemfdFlags::CLOEXEC).map_err(io)?;
        ftruncate(&fd, len as u64).map_err(io)?;
        // SAFETY: a fresh shared mapping of a file we just sized to `len`; nothing else maps it
        // in this process, and it is unmapped only in Drop.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(io)?;
        let ptr = NonNull::new(ptr).ok_or_else(|| io(rustix::io::Errno::NOMEM))?;
        // Owned from here, so that an error below unmaps it.
        let mut segment = Segment { seg: 0, ptr, len };
        let seg = conn.generate_id()?;
        conn.shm_attach_fd(seg, fd, false)?.check()?;
        segment.seg = seg;
        Ok(segment)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The first `len` bytes. Read only after the server has replied to the request that wrote
    /// them, so that it is not writing while we read.
    pub(super) fn bytes(&self, len: usize) -> &[u8] {
        let len = len.min(self.len);
        // SAFETY: the mapping is `self.len` bytes long and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), len) }
    }

    /// Detaches from the server (the mapping goes in Drop).
    pub(super) fn detach(&self, conn: &RustConnection) {
        if self.seg != 0 {
            // The server detaches by itself when the connection closes: an error here changes nothing.
            let _ = conn.shm_detach(self.seg);
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: the pointer and length are those mmap returned; no slice from `bytes` outlives
        // `self`.
        unsafe {
            let _ = munmap(self.ptr.as_ptr(), self.len);
        }
    }
}

// The mapping is plain memory owned by this value.
unsafe impl Send for Segment {}
