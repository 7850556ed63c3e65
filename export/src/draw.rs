//! Annotations and the pointer, drawn onto I420 frames the way the browser's viewer draws them
//! (web/viewer.js): round-capped segments in coordinates relative to the picture, pen and
//! highlighter painted over, the eraser removing ink. Drawing straight into I420 spares the
//! two colour conversions per frame that an RGB overlay would cost.

/// Where the source's picture lies inside the output frame (after letterboxing), in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Rect {
    /// The picture of a `sw` x `sh` source fitted into a `fw` x `fh` frame, centred, as
    /// videoscale's add-borders places it.
    pub(crate) fn fit(sw: usize, sh: usize, fw: usize, fh: usize) -> Rect {
        if sw == 0 || sh == 0 {
            return Rect {
                x: 0,
                y: 0,
                w: fw,
                h: fh,
            };
        }
        let (w, h) = if fw * sh > fh * sw {
            ((fh * sw / sh).max(1), fh)
        } else {
            (fw, (fw * sh / sw).max(1))
        };
        Rect {
            x: (fw - w.min(fw)) / 2,
            y: (fh - h.min(fh)) / 2,
            w,
            h,
        }
    }

    /// Strokes are as wide as in a viewer showing the picture 720 pixels high, and never
    /// thinner than there: a pen line must stay visible on a small export.
    fn scale(&self) -> f32 {
        (self.h as f32 / 720.0).max(1.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Tool {
    Pen,
    Highlighter,
    Eraser,
}

impl Tool {
    /// Width in pixels and opacity, as in the viewer's TOOLS.
    fn style(self) -> (f32, f32) {
        match self {
            Tool::Pen => (3.0, 1.0),
            Tool::Highlighter => (18.0, 0.35),
            Tool::Eraser => (24.0, 1.0),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Segment {
    pub tool: Tool,
    pub rgb: [u8; 3],
    pub a: [f32; 2],
    pub b: [f32; 2],
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Annotation {
    Segment(Segment),
    Clear,
}

/// A message of the annotation channel, checked as the viewer checks it; `None` for anything
/// malformed (the viewer ignores it too).
pub(crate) fn parse_annotation(json: &str) -> Option<Annotation> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    match v.get("t")?.as_str()? {
        "clear" => Some(Annotation::Clear),
        "seg" => {
            let tool = match v.get("tool")?.as_str()? {
                "pen" => Tool::Pen,
                "highlighter" => Tool::Highlighter,
                "eraser" => Tool::Eraser,
                _ => return None,
            };
            Some(Annotation::Segment(Segment {
                tool,
                rgb: colour(v.get("c")?.as_str()?)?,
                a: point(v.get("a")?)?,
                b: point(v.get("b")?)?,
            }))
        }
        _ => None,
    }
}

/// The position of a pointer `move` event, relative to the picture.
pub(crate) fn parse_pointer(json: &str) -> Option<[f32; 2]> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    (v.get("t")?.as_str()? == "move")
        .then(|| point(v.get("at")?))
        .flatten()
}

fn point(v: &serde_json::Value) -> Option<[f32; 2]> {
    let coords = v.as_array()?;
    let [x, y] = coords.as_slice() else {
        return None;
    };
    let ok = |c: &serde_json::Value| {
        c.as_f64()
            .filter(|c| c.is_finite() && *c > -1.0 && *c < 2.0)
    };
    Some([ok(x)? as f32, ok(y)? as f32])
}

fn colour(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#').filter(|h| h.len() == 6)?;
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// The three planes of a writable I420 frame.
pub(crate) struct Planes<'a> {
    pub y: &'a mut [u8],
    pub u: &'a mut [u8],
    pub v: &'a mut [u8],
    pub y_stride: usize,
    pub uv_stride: usize,
    pub width: usize,
    pub height: usize,
}

/// Premultiplied BT.601 (studio range) components of a premultiplied colour, times 256.
fn yuv_premul(r: f32, g: f32, b: f32, a: f32) -> [f32; 3] {
    [
        (16.0 * a + 65.481 * r + 128.553 * g + 24.966 * b) * 256.0,
        (128.0 * a - 37.797 * r - 74.203 * g + 112.0 * b) * 256.0,
        (128.0 * a + 112.0 * r - 93.786 * g - 18.214 * b) * 256.0,
    ]
}

/// `(premultiplied value * 256, (1 - alpha) * 256)` blended onto `dst`.
fn blend(dst: &mut u8, p: u16, inv: u16) {
    let v = (u32::from(p) + u32::from(*dst) * u32::from(inv) + 128) >> 8;
    *dst = v.min(255) as u8;
}

/// Coverage of a pixel centre by a round-capped segment of half-width `r`, anti-aliased over
/// one pixel.
fn coverage(px: f32, py: f32, a: [f32; 2], b: [f32; 2], r: f32) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((px - a[0]) * dx + (py - a[1]) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (a[0] + t * dx - px, a[1] + t * dy - py);
    (r + 0.5 - (cx * cx + cy * cy).sqrt()).clamp(0.0, 1.0)
}

/// Integer bounds `[lo, hi)` of the pixels a shape from `min` to `max` can touch, within `len`.
fn span(min: f32, max: f32, len: usize) -> (usize, usize) {
    let lo = (min.floor() - 1.0).max(0.0) as usize;
    let hi = ((max.ceil() + 1.0).max(0.0) as usize).min(len);
    (lo.min(hi), hi)
}

/// The ink since the last `clear`, as the viewer keeps it: the segments, and their raster for
/// the current picture rectangle (rebuilt, like the viewer's redraw, when the picture moves or
/// changes size).
#[derive(Default)]
pub(crate) struct Ink {
    segments: Vec<Segment>,
    raster: Option<Raster>,
}

/// The viewer keeps this many segments; so do we, so an endless scribble cannot exhaust memory.
const MAX_SEGMENTS: usize = 20_000;

impl Ink {
    pub(crate) fn add(&mut self, seg: Segment) {
        if let Some(r) = &mut self.raster {
            r.stroke(&seg);
        }
        if self.segments.len() >= MAX_SEGMENTS {
            self.segments.remove(0);
        }
        self.segments.push(seg);
    }

    pub(crate) fn clear(&mut self) {
        self.segments.clear();
        self.raster = None;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Paints the ink onto a frame whose picture lies at `rect`.
    pub(crate) fn paint(&mut self, planes: &mut Planes<'_>, rect: Rect) {
        if self.segments.is_empty() {
            return;
        }
        if self.raster.as_ref().is_none_or(|r| r.rect != rect) {
            let mut raster = Raster::new(rect);
            for seg in &self.segments {
                raster.stroke(seg);
            }
            self.raster = Some(raster);
        }
        if let Some(r) = &mut self.raster {
            r.paint(planes);
        }
    }
}

/// Premultiplied RGBA ink over the picture rectangle, and its blend terms in I420, computed once
/// per change rather than once per frame.
struct Raster {
    rect: Rect,
    px: Vec<[f32; 4]>,
    /// Pixels touched since the raster was made: `[x0, y0, x1, y1)` in raster coordinates.
    bbox: Option<[usize; 4]>,
    cache: Option<Cache>,
}

struct Cache {
    /// Frame-space luma box and chroma box, with `(value, 1 - alpha)` per pixel, times 256.
    luma: [usize; 4],
    y: Vec<(u16, u16)>,
    chroma: [usize; 4],
    uv: Vec<(u16, u16, u16)>,
}

impl Raster {
    fn new(rect: Rect) -> Self {
        Raster {
            rect,
            px: vec![[0.0; 4]; rect.w * rect.h],
            bbox: None,
            cache: None,
        }
    }

    fn stroke(&mut self, seg: &Segment) {
        let (width, alpha) = seg.tool.style();
        let r = width * self.rect.scale() / 2.0;
        let (w, h) = (self.rect.w, self.rect.h);
        let a = [seg.a[0] * w as f32, seg.a[1] * h as f32];
        let b = [seg.b[0] * w as f32, seg.b[1] * h as f32];
        let (x0, x1) = span(a[0].min(b[0]) - r, a[0].max(b[0]) + r, w);
        let (y0, y1) = span(a[1].min(b[1]) - r, a[1].max(b[1]) + r, h);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let [cr, cg, cb] = seg.rgb.map(|c| f32::from(c) / 255.0);
        for y in y0..y1 {
            let Some(row) = self.px.get_mut(y * w + x0..y * w + x1) else {
                continue;
            };
            for (i, p) in row.iter_mut().enumerate() {
                let cov = coverage((x0 + i) as f32 + 0.5, y as f32 + 0.5, a, b, r);
                if cov <= 0.0 {
                    continue;
                }
                if seg.tool == Tool::Eraser {
                    p.iter_mut().for_each(|c| *c *= 1.0 - cov);
                } else {
                    let sa = alpha * cov;
                    let keep = 1.0 - sa;
                    *p = [
                        cr * sa + p[0] * keep,
                        cg * sa + p[1] * keep,
                        cb * sa + p[2] * keep,
                        sa + p[3] * keep,
                    ];
                }
            }
        }
        self.bbox = Some(match self.bbox {
            None => [x0, y0, x1, y1],
            Some([a0, b0, a1, b1]) => [a0.min(x0), b0.min(y0), a1.max(x1), b1.max(y1)],
        });
        self.cache = None;
    }

    fn build_cache(&self) -> Option<Cache> {
        let [bx0, by0, bx1, by1] = self.bbox?;
        let (ox, oy, w) = (self.rect.x, self.rect.y, self.rect.w);
        let luma = [ox + bx0, oy + by0, ox + bx1, oy + by1];
        let mut y = Vec::with_capacity((bx1 - bx0) * (by1 - by0));
        for ry in by0..by1 {
            for rx in bx0..bx1 {
                let [r, g, b, a] = self.px.get(ry * w + rx).copied().unwrap_or_default();
                y.push((yuv_premul(r, g, b, a)[0] as u16, ((1.0 - a) * 256.0) as u16));
            }
        }
        // Each chroma sample covers a 2x2 block of frame pixels: average the ink over it.
        let chroma = [
            luma[0] / 2,
            luma[1] / 2,
            luma[2].div_ceil(2),
            luma[3].div_ceil(2),
        ];
        let mut uv = Vec::with_capacity((chroma[2] - chroma[0]) * (chroma[3] - chroma[1]));
        for cy in chroma[1]..chroma[3] {
            for cx in chroma[0]..chroma[2] {
                let mut sum = [0.0f32; 4];
                for (fx, fy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (px, py) = (cx * 2 + fx, cy * 2 + fy);
                    if px < ox || py < oy || px >= ox + w || py >= oy + self.rect.h {
                        continue;
                    }
                    let p = self
                        .px
                        .get((py - oy) * w + (px - ox))
                        .copied()
                        .unwrap_or_default();
                    sum.iter_mut().zip(p).for_each(|(s, c)| *s += c / 4.0);
                }
                let [_, u, v] = yuv_premul(sum[0], sum[1], sum[2], sum[3]);
                uv.push((u as u16, v as u16, ((1.0 - sum[3]) * 256.0) as u16));
            }
        }
        Some(Cache {
            luma,
            y,
            chroma,
            uv,
        })
    }

    fn paint(&mut self, planes: &mut Planes<'_>) {
        if self.cache.is_none() {
            self.cache = self.build_cache();
        }
        let Some(c) = &self.cache else {
            return;
        };
        paint_plane(planes.y, planes.y_stride, c.luma, &c.y, |d, &(p, inv)| {
            blend(d, p, inv)
        });
        let uv_stride = planes.uv_stride;
        paint_plane(planes.u, uv_stride, c.chroma, &c.uv, |d, &(p, _, inv)| {
            blend(d, p, inv)
        });
        paint_plane(planes.v, uv_stride, c.chroma, &c.uv, |d, &(_, p, inv)| {
            blend(d, p, inv)
        });
    }
}

/// Applies per-pixel terms laid out row by row over `bx` to a plane; rows or columns outside the
/// plane are skipped rather than trusted.
fn paint_plane<T>(
    plane: &mut [u8],
    stride: usize,
    bx: [usize; 4],
    terms: &[T],
    mut f: impl FnMut(&mut u8, &T),
) {
    let [x0, y0, x1, y1] = bx;
    let w = x1 - x0;
    if w == 0 || x1 > stride {
        return;
    }
    for (row, y) in terms.chunks_exact(w).zip(y0..y1) {
        let Some(dst) = plane.get_mut(y * stride + x0..y * stride + x1) else {
            break;
        };
        dst.iter_mut().zip(row).for_each(|(d, t)| f(d, t));
    }
}

/// Fills a disk of `colour` (opaque) at `(cx, cy)` frame pixels.
fn disk(planes: &mut Planes<'_>, cx: f32, cy: f32, r: f32, rgb: [u8; 3]) {
    let [cr, cg, cb] = rgb.map(|c| f32::from(c) / 255.0);
    let (x0, x1) = span(cx - r, cx + r, planes.width);
    let (y0, y1) = span(cy - r, cy + r, planes.height);
    for y in y0..y1 {
        for x in x0..x1 {
            let cov = coverage(x as f32 + 0.5, y as f32 + 0.5, [cx, cy], [cx, cy], r);
            if cov > 0.0 {
                let [p, _, _] = yuv_premul(cr * cov, cg * cov, cb * cov, cov);
                if let Some(d) = planes.y.get_mut(y * planes.y_stride + x) {
                    blend(d, p as u16, ((1.0 - cov) * 256.0) as u16);
                }
            }
        }
    }
    for y in y0 / 2..y1.div_ceil(2) {
        for x in x0 / 2..x1.div_ceil(2) {
            let cov = coverage(
                x as f32 * 2.0 + 1.0,
                y as f32 * 2.0 + 1.0,
                [cx, cy],
                [cx, cy],
                r,
            );
            if cov > 0.0 {
                let [_, u, v] = yuv_premul(cr * cov, cg * cov, cb * cov, cov);
                let inv = ((1.0 - cov) * 256.0) as u16;
                let i = y * planes.uv_stride + x;
                if let Some(d) = planes.u.get_mut(i) {
                    blend(d, u as u16, inv);
                }
                if let Some(d) = planes.v.get_mut(i) {
                    blend(d, v as u16, inv);
                }
            }
        }
    }
}

/// The pointer's colour: the viewer's first annotation colour, inside a white ring so that it
/// shows on any background.
const POINTER_RGB: [u8; 3] = [0xe1, 0x1d, 0x48];

/// Draws the remote pointer at `at` (relative to the picture).
pub(crate) fn pointer(planes: &mut Planes<'_>, rect: Rect, at: [f32; 2]) {
    let s = rect.scale();
    let cx = rect.x as f32 + at[0] * rect.w as f32;
    let cy = rect.y as f32 + at[1] * rect.h as f32;
    disk(planes, cx, cy, 9.0 * s, [255, 255, 255]);
    disk(planes, cx, cy, 6.5 * s, POINTER_RGB);
}

/// Fills a frame with black (studio range).
pub(crate) fn black(planes: &mut Planes<'_>) {
    planes.y.fill(16);
    planes.u.fill(128);
    planes.v.fill(128);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_viewers_messages() {
        let seg =
            r##"{"t":"seg","tool":"pen","c":"#e11d48","a":[0.1,0.2],"b":[0.3,0.4],"from":"x"}"##;
        assert_eq!(
            parse_annotation(seg),
            Some(Annotation::Segment(Segment {
                tool: Tool::Pen,
                rgb: [0xe1, 0x1d, 0x48],
                a: [0.1, 0.2],
                b: [0.3, 0.4],
            }))
        );
        assert_eq!(
            parse_annotation(r#"{"t":"clear"}"#),
            Some(Annotation::Clear)
        );
        for bad in [
            r##"{"t":"seg","tool":"brush","c":"#e11d48","a":[0,0],"b":[1,1]}"##,
            r##"{"t":"seg","tool":"pen","c":"red","a":[0,0],"b":[1,1]}"##,
            r##"{"t":"seg","tool":"pen","c":"#e11d48","a":[0,5],"b":[1,1]}"##,
            r##"{"t":"seg","tool":"pen","c":"#e11d48","a":[0],"b":[1,1]}"##,
            "not json",
        ] {
            assert_eq!(parse_annotation(bad), None, "{bad}");
        }
        assert_eq!(
            parse_pointer(r#"{"t":"move","at":[0.5,0.25]}"#),
            Some([0.5, 0.25])
        );
        assert_eq!(parse_pointer(r#"{"t":"move","at":[0.5]}"#), None);
    }

    #[test]
    fn fit_letterboxes_and_pillarboxes() {
        assert_eq!(
            Rect::fit(1280, 720, 640, 360),
            Rect {
                x: 0,
                y: 0,
                w: 640,
                h: 360
            }
        );
        assert_eq!(
            Rect::fit(800, 600, 1280, 720),
            Rect {
                x: 160,
                y: 0,
                w: 960,
                h: 720
            }
        );
        assert_eq!(
            Rect::fit(1280, 400, 640, 360),
            Rect {
                x: 0,
                y: 80,
                w: 640,
                h: 200
            }
        );
    }

    fn frame(w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        (vec![16; w * h], vec![128; w * h / 4], vec![128; w * h / 4])
    }

    /// A blank `w`x`h` frame with `ink` painted on it: its Y, U and V planes.
    fn painted(ink: &mut Ink, w: usize, h: usize, rect: Rect) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (mut y, mut u, mut v) = frame(w, h);
        let mut planes = Planes {
            y: &mut y,
            u: &mut u,
            v: &mut v,
            y_stride: w,
            uv_stride: w / 2,
            width: w,
            height: h,
        };
        ink.paint(&mut planes, rect);
        (y, u, v)
    }

    #[test]
    fn pen_paints_red_and_eraser_removes_it() {
        let (w, h) = (64, 32);
        let rect = Rect { x: 0, y: 0, w, h };
        let mut ink = Ink::default();
        let pen = |tool| Segment {
            tool,
            rgb: [255, 0, 0],
            a: [0.1, 0.5],
            b: [0.9, 0.5],
        };
        ink.add(pen(Tool::Pen));
        let (y, _, v) = painted(&mut ink, w, h, rect);
        // Red in studio-range BT.601: Y 81, V 240.
        assert!((79..=83).contains(&y[16 * w + 32]), "{}", y[16 * w + 32]);
        assert!(v[8 * (w / 2) + 16] > 200, "{}", v[8 * (w / 2) + 16]);
        assert_eq!(y[2 * w + 32], 16, "far from the line");

        ink.add(pen(Tool::Eraser));
        let (y, _, v) = painted(&mut ink, w, h, rect);
        assert_eq!(y[16 * w + 32], 16);
        assert_eq!(v[8 * (w / 2) + 16], 128);
    }
}
