//! Picture space: the pixels of what is captured, as the CSR sees them (possibly scaled by the
//! encoder), and how a point there maps back onto the screen. Plain functions, so the rules are
//! tested without a display.

use thiserror::Error;

pub mod tiles;

/// A rectangle in screen pixels (origin at the top left of the whole desktop) or in picture pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// One past the last column, widened so that no sum overflows.
    pub fn right(&self) -> i64 {
        i64::from(self.x) + i64::from(self.width)
    }

    /// One past the last row.
    pub fn bottom(&self) -> i64 {
        i64::from(self.y) + i64::from(self.height)
    }

    pub fn contains(&self, x: i64, y: i64) -> bool {
        x >= i64::from(self.x) && x < self.right() && y >= i64::from(self.y) && y < self.bottom()
    }

    /// The common part of two rectangles, if they overlap.
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x = i64::from(self.x).max(i64::from(other.x));
        let y = i64::from(self.y).max(i64::from(other.y));
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        if right <= x || bottom <= y {
            return None;
        }
        Some(Rect {
            x: x as i32,
            y: y as i32,
            width: (right - x) as u32,
            height: (bottom - y) as u32,
        })
    }

    /// The same rectangle moved by (dx, dy), saturating at the i32 range.
    pub fn translated(&self, dx: i32, dy: i32) -> Rect {
        Rect {
            x: self.x.saturating_add(dx),
            y: self.y.saturating_add(dy),
            ..*self
        }
    }
}

/// The size of the picture the CSR sees: the captured frame, or the encoder's scaled copy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureSize {
    pub width: u32,
    pub height: u32,
}

/// Why a picture point cannot be placed on the screen.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MapError {
    #[error("the picture has no pixels")]
    EmptyPicture,
    #[error("what is shown has no pixels on the screen (minimised or off screen)")]
    EmptyShown,
    #[error("the point's coordinates are not finite numbers")]
    NotFinite,
}

/// Maps a point of the picture onto the screen, inside `shown` (the monitor or window being shown,
/// at its position now: a window that moved since the frame was sent is followed).
///
/// The picture is stretched over `shown`, so scaling is per axis. A point outside the picture is
/// clamped to its edge: control never reaches a pixel outside what the customer chose to show.
pub fn picture_to_screen(
    point: (f64, f64),
    picture: PictureSize,
    shown: Rect,
) -> Result<(i32, i32), MapError> {
    if picture.width == 0 || picture.height == 0 {
        return Err(MapError::EmptyPicture);
    }
    if shown.is_empty() {
        return Err(MapError::EmptyShown);
    }
    if !point.0.is_finite() || !point.1.is_finite() {
        return Err(MapError::NotFinite);
    }
    let axis = |p: f64, picture: u32, origin: i32, extent: u32| -> i32 {
        let scaled = (p * f64::from(extent) / f64::from(picture)).floor();
        let offset = scaled.clamp(0.0, f64::from(extent - 1)) as i64;
        (i64::from(origin) + offset).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    };
    Ok((
        axis(point.0, picture.width, shown.x, shown.width),
        axis(point.1, picture.height, shown.y, shown.height),
    ))
}

/// Maps a screen point (the cursor, say) into the picture, or `None` when it lies outside `shown`.
pub fn screen_to_picture(
    point: (i32, i32),
    picture: PictureSize,
    shown: Rect,
) -> Option<(u32, u32)> {
    if shown.is_empty() || !shown.contains(point.0.into(), point.1.into()) {
        return None;
    }
    let axis = |p: i32, origin: i32, extent: u32, picture: u32| -> u32 {
        let offset = (i64::from(p) - i64::from(origin)) as u64;
        (offset * u64::from(picture) / u64::from(extent)) as u32
    };
    Some((
        axis(point.0, shown.x, shown.width, picture.width),
        axis(point.1, shown.y, shown.height, picture.height),
    ))
}

/// Damaged rectangles in the drawable's coordinates, turned into frame coordinates: clipped to
/// `area` (the captured part of the drawable) and moved so that `area`'s corner is (0, 0).
pub fn damage_in_frame(damage: &[Rect], area: Rect) -> Vec<Rect> {
    damage
        .iter()
        .filter_map(|r| r.intersect(&area))
        .map(|r| r.translated(-area.x, -area.y))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Rect = Rect::new(0, 0, 1280, 800);

    #[test]
    fn same_size_picture_maps_one_to_one() {
        let picture = PictureSize {
            width: 1280,
            height: 800,
        };
        assert_eq!(
            picture_to_screen((100.0, 200.0), picture, SCREEN),
            Ok((100, 200))
        );
        assert_eq!(
            picture_to_screen((1279.9, 799.9), picture, SCREEN),
            Ok((1279, 799))
        );
    }

    #[test]
    fn scaled_picture_is_stretched_per_axis() {
        let half = PictureSize {
            width: 640,
            height: 400,
        };
        assert_eq!(
            picture_to_screen((320.0, 100.0), half, SCREEN),
            Ok((640, 200))
        );
        let squashed = PictureSize {
            width: 1280,
            height: 400,
        };
        assert_eq!(
            picture_to_screen((320.0, 100.0), squashed, SCREEN),
            Ok((320, 200))
        );
    }

    #[test]
    fn second_monitor_is_offset() {
        let right = Rect::new(1280, 0, 1920, 1080);
        let picture = PictureSize {
            width: 960,
            height: 540,
        };
        assert_eq!(picture_to_screen((0.0, 0.0), picture, right), Ok((1280, 0)));
        assert_eq!(
            picture_to_screen((480.0, 270.0), picture, right),
            Ok((2240, 540))
        );
    }

    #[test]
    fn points_outside_the_picture_are_clamped_inside_what_is_shown() {
        let window = Rect::new(100, 50, 300, 200);
        let picture = PictureSize {
            width: 300,
            height: 200,
        };
        assert_eq!(
            picture_to_screen((-5.0, -1e9), picture, window),
            Ok((100, 50))
        );
        assert_eq!(
            picture_to_screen((1e12, 250.0), picture, window),
            Ok((399, 249))
        );
    }

    #[test]
    fn a_window_that_moved_is_followed() {
        let picture = PictureSize {
            width: 300,
            height: 200,
        };
        let before = Rect::new(100, 50, 300, 200);
        let after = Rect::new(700, 400, 300, 200);
        assert_eq!(
            picture_to_screen((10.0, 20.0), picture, before),
            Ok((110, 70))
        );
        assert_eq!(
            picture_to_screen((10.0, 20.0), picture, after),
            Ok((710, 420))
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let picture = PictureSize {
            width: 300,
            height: 200,
        };
        let empty = PictureSize {
            width: 0,
            height: 200,
        };
        assert_eq!(
            picture_to_screen((1.0, 1.0), empty, SCREEN),
            Err(MapError::EmptyPicture)
        );
        assert_eq!(
            picture_to_screen((1.0, 1.0), picture, Rect::new(0, 0, 0, 10)),
            Err(MapError::EmptyShown)
        );
        assert_eq!(
            picture_to_screen((f64::NAN, 1.0), picture, SCREEN),
            Err(MapError::NotFinite)
        );
        assert_eq!(
            picture_to_screen((1.0, f64::INFINITY), picture, SCREEN),
            Err(MapError::NotFinite)
        );
    }

    #[test]
    fn extreme_origins_do_not_overflow() {
        let picture = PictureSize {
            width: 10,
            height: 10,
        };
        let far = Rect::new(i32::MAX - 2, i32::MIN, u32::MAX, u32::MAX);
        assert!(picture_to_screen((9.0, 9.0), picture, far).is_ok());
        assert_eq!(far.intersect(&far), Some(far));
    }

    #[test]
    fn screen_points_map_into_the_picture() {
        let window = Rect::new(100, 50, 300, 200);
        let half = PictureSize {
            width: 150,
            height: 100,
        };
        assert_eq!(screen_to_picture((100, 50), half, window), Some((0, 0)));
        assert_eq!(screen_to_picture((399, 249), half, window), Some((149, 99)));
        assert_eq!(screen_to_picture((400, 50), half, window), None);
    }

    #[test]
    fn damage_is_clipped_and_moved_into_the_frame() {
        let monitor = Rect::new(1280, 0, 1280, 800);
        let damage = [
            Rect::new(0, 0, 100, 100),       // on the other monitor
            Rect::new(1200, 10, 200, 20),    // straddles both
            Rect::new(2000, 700, 1000, 500), // runs off the bottom right
        ];
        assert_eq!(
            damage_in_frame(&damage, monitor),
            vec![Rect::new(0, 10, 120, 20), Rect::new(720, 700, 560, 100)]
        );
    }
}
