#!/usr/bin/env bash
# Installs the Debian packages Tandem's build and tests need, if any is missing (as root, or
# through sudo). The one list of system packages; run.sh and test.sh call it.
set -euo pipefail

packages=(
    pkg-config libssl-dev # TLS for the SMTP client (lettre, native-tls)
    python3               # tests: its standard-library smtpd is the SMTP relay in tests/server/mail.rs
    python3-venv          # tests: the venv of scripts/python-packages.sh (aiortc, tests/interop)
    cmake                 # builds the bundled libopus (opus crate) for the voice mixer
    g++                   # builds libFuzzer (libfuzzer-sys) when the fuzz targets are checked
    chromium              # tests: the WebRTC browser (tests/e2e, driven by playwright-core)
    ffmpeg                # tests: makes and checks MP4 files (ffmpeg, ffprobe)
    sip-tester            # tests: sipp, the phone in tests/server/sip.rs and the SIP load run
    baresip-core          # tests: baresip, a real softphone (tests/server/sip/baresip.rs)
    xclip                 # tests: another program on the clipboard (helper/tests/x11.rs)
    prometheus            # tests: promtool check metrics (tests/server/metrics_lint.rs); the only
                          # Debian package with promtool. Where systemd runs, apt also starts its
                          # server on port 9090: `systemctl disable --now prometheus` stops it
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev # builds gstreamer-rs (tandem-export)
    gstreamer1.0-plugins-base # ARF to MP4: opusdec, videoconvert, videoscale, appsrc; tests: opusenc
    gstreamer1.0-plugins-good # ARF to MP4: vp8dec, mp4mux; tests: vp8enc
    gstreamer1.0-plugins-ugly # ARF to MP4: x264enc
    gstreamer1.0-libav        # ARF to MP4: avdec_h264, avenc_aac
    libgtk-4-dev              # builds gtk4-rs: the helper's window (helper/src/window.rs)
    xvfb                      # tests: the X display the helper's tests run on
    dbus at-spi2-core python3-pyatspi # tests: answer the helper's window over AT-SPI (helper/tests/window.rs)
    nasm                      # builds OpenH264's assembly (openh264-sys2); without it, its slower C code
    libpam0g-dev              # links tandem-helper-logon to PAM (pam-client2): M4 checks a user's password
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is required: install Rust with rustup"; exit 1; }
if ! command -v npm >/dev/null; then
    echo "installing: nodejs npm"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends nodejs npm
fi
