#!/usr/bin/env python3
"""The pixel changer of glass_to_glass.mjs: one X connection held open, so a change costs no
process start. Reads one colour a line (RRGGBB hex) on stdin, paints the root window's
background with it, waits for the X server to have done it (XSync), and answers one line: the
CLOCK_REALTIME instant in ms (the page's Date.now() clock) taken just before the request and
just after XSync. The display is $DISPLAY; the screen must be TrueColor (Xvfb ...x24)."""
import ctypes, ctypes.util, sys, time

x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XDefaultRootWindow.restype = ctypes.c_ulong
x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x.XSetWindowBackground.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
x.XClearWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]

dpy = x.XOpenDisplay(None)
if not dpy:
    sys.exit("glass_to_glass.py: cannot open the X display $DISPLAY")
root = x.XDefaultRootWindow(dpy)
print("ready", flush=True)
for line in sys.stdin:
    pixel = int(line.strip(), 16)
    before = time.time() * 1000
    x.XSetWindowBackground(dpy, root, pixel)
    x.XClearWindow(dpy, root)
    x.XSync(dpy, 0)
    after = time.time() * 1000
    print(f"{before:.3f} {after:.3f}", flush=True)
