//! Any bytes as F2's network input: a batch's list (the server), an operation as the CSR sends
//! it (the session's rules) and as the server relays it (the helper). Nothing may panic; what
//! is accepted holds only safe relative paths (no `..`, `.`, empty part, leading `/` or NUL),
//! and a list that passes its check is at most 150 MB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::file_batches::Manifest;
use tandem_actors::computer_files::{FilesRequest, FilesResult, MAX_BATCH_BYTES};

fn safe(path: &str) -> bool {
    path.is_empty()
        || (!path.starts_with('/')
            && !path.contains('\0')
            && path
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != ".."))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<Manifest>(data)
        && let Ok(total) = m.check()
    {
        assert!(total <= MAX_BATCH_BYTES);
        assert!(m.files.iter().all(|f| !f.path.is_empty() && safe(&f.path)));
        assert!(m.folders.iter().all(|f| !f.is_empty() && safe(f)));
    }
    if let Ok(r) = serde_json::from_slice::<FilesRequest>(data)
        && r.check().is_ok()
    {
        match &r {
            FilesRequest::List { path }
            | FilesRequest::MakeFolder { path }
            | FilesRequest::Delete { path } => assert!(safe(path)),
            FilesRequest::Rename { path, to } => assert!(safe(path) && !to.contains('/')),
            FilesRequest::Receive { folder, .. } => assert!(safe(folder)),
            FilesRequest::Send { paths } => assert!(paths.iter().all(|p| safe(p))),
            FilesRequest::Cancel { .. } => {}
        }
    }
    if let Ok(r) = serde_json::from_slice::<FilesResult>(data) {
        let _ = r.check();
    }
    if let Ok(r) = serde_json::from_slice::<tandem_helper::file_paths::FilesRequest>(data)
        && r.check().is_ok()
    {
        let _ = r.words();
    }
});
