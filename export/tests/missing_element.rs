//! A missing GStreamer element is named with the Debian package to install. In a test binary of
//! its own: it removes an element from the process's plugin registry.

use gstreamer as gst;
use gstreamer::prelude::*;
use tandem_export::{ExportError, ExportOptions, export, init};

#[test]
fn a_missing_element_names_its_debian_package() {
    init().unwrap();
    let registry = gst::Registry::get();
    let x264 = registry
        .find_feature("x264enc", gst::ElementFactory::static_type())
        .unwrap();
    registry.remove_feature(&x264);

    let err = init().unwrap_err();
    assert_eq!(err.code(), "missing_element");
    assert!(matches!(
        err,
        ExportError::MissingElement {
            element: "x264enc",
            package: "gstreamer1.0-plugins-ugly"
        }
    ));
    assert!(
        err.to_string()
            .contains("install the Debian package gstreamer1.0-plugins-ugly")
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    let err = export(
        &dir.path().join("in.arf"),
        &out,
        &ExportOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(err.code(), "missing_element");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
