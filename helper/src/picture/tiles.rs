//! D6: several chosen windows in one picture. Each window is a tile of its own, side by side in
//! rows (a new row when the next would pass [`MAX_ROW_WIDTH`]), the rest of the picture black.
//!
//! Why side by side, not the windows' bounding box on the screen: each window's own pixels are
//! complete in its tile (two chosen windows that overlap on the screen do not hide each other,
//! and no stacking order is needed), a window moving on the screen does not change the picture,
//! and the picture holds no large black area between windows far apart. Control maps a picture
//! point to the tile it falls in and onto that window where it is on the screen now; a point in
//! no tile reaches nothing.

use super::{MapError, PictureSize, Rect, picture_to_screen};

/// The widest row of tiles: the encoder's widest picture.
pub const MAX_ROW_WIDTH: u32 = 3840;

/// One chosen window in the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub window: u64,
    /// Where the window's pixels are in the picture.
    pub at: Rect,
    /// Where the window is on the screen.
    pub shown: Rect,
}

/// A picture point that falls in a window: the window and the screen point.
pub type Hit = (u64, (i32, i32));

/// The picture of the chosen windows: its size and the tiles in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub size: Option<PictureSize>,
    pub tiles: Vec<Tile>,
}

/// Lays the windows (id and place on the screen, in the customer's order) out side by side.
pub fn lay_out(windows: &[(u64, Rect)]) -> Placement {
    let (mut x, mut y, mut row_height, mut width) = (0u32, 0u32, 0u32, 0u32);
    let mut tiles = Vec::with_capacity(windows.len());
    for &(window, shown) in windows {
        if x > 0 && x.saturating_add(shown.width) > MAX_ROW_WIDTH {
            y = y.saturating_add(row_height);
            (x, row_height) = (0, 0);
        }
        let at = Rect::new(x as i32, y as i32, shown.width, shown.height);
        tiles.push(Tile { window, at, shown });
        x = x.saturating_add(shown.width);
        width = width.max(x);
        row_height = row_height.max(shown.height);
    }
    let height = y.saturating_add(row_height);
    Placement {
        size: (width > 0 && height > 0).then_some(PictureSize { width, height }),
        tiles,
    }
}

impl Placement {
    /// The window a point of the picture (fractions of its width and height, as control sends
    /// them) falls in, and the screen point in that window now; `None` outside every tile.
    pub fn to_screen(&self, fraction: (f64, f64)) -> Result<Option<Hit>, MapError> {
        let size = self.size.ok_or(MapError::EmptyPicture)?;
        if !fraction.0.is_finite() || !fraction.1.is_finite() {
            return Err(MapError::NotFinite);
        }
        let x = (fraction.0 * f64::from(size.width)).floor();
        let y = (fraction.1 * f64::from(size.height)).floor();
        let Some(tile) = self
            .tiles
            .iter()
            .find(|t| t.at.contains(x as i64, y as i64))
        else {
            return Ok(None);
        };
        let inside = (x - f64::from(tile.at.x), y - f64::from(tile.at.y));
        let tile_size = PictureSize {
            width: tile.at.width,
            height: tile.at.height,
        };
        let point = picture_to_screen(inside, tile_size, tile.shown)?;
        Ok(Some((tile.window, point)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_window_is_the_whole_picture() {
        let p = lay_out(&[(7, Rect::new(100, 50, 400, 300))]);
        assert_eq!(
            p.size,
            Some(PictureSize {
                width: 400,
                height: 300
            })
        );
        assert_eq!(p.to_screen((0.5, 0.5)), Ok(Some((7, (300, 200)))));
    }

    #[test]
    fn windows_sit_side_by_side_and_the_gap_below_reaches_nothing() {
        let p = lay_out(&[
            (1, Rect::new(500, 500, 400, 300)),
            (2, Rect::new(0, 0, 200, 100)),
        ]);
        assert_eq!(
            p.size,
            Some(PictureSize {
                width: 600,
                height: 300
            })
        );
        assert_eq!(p.tiles[1].at, Rect::new(400, 0, 200, 100));
        // (450, 50) of the picture is window 2's (50, 50).
        assert_eq!(
            p.to_screen((450.0 / 600.0, 50.0 / 300.0)),
            Ok(Some((2, (50, 50))))
        );
        // Below window 2's tile: black, no window.
        assert_eq!(p.to_screen((450.0 / 600.0, 200.0 / 300.0)), Ok(None));
        assert_eq!(p.to_screen((2.0, 0.5)), Ok(None));
        assert_eq!(p.to_screen((f64::NAN, 0.5)), Err(MapError::NotFinite));
    }

    #[test]
    fn a_row_too_wide_wraps() {
        let p = lay_out(&[
            (1, Rect::new(0, 0, 3000, 100)),
            (2, Rect::new(0, 0, 2000, 50)),
        ]);
        assert_eq!(p.tiles[1].at, Rect::new(0, 100, 2000, 50));
        assert_eq!(
            p.size,
            Some(PictureSize {
                width: 3000,
                height: 150
            })
        );
    }

    #[test]
    fn a_window_that_moved_is_followed() {
        let mut p = lay_out(&[(1, Rect::new(0, 0, 100, 100))]);
        p.tiles[0].shown = Rect::new(300, 300, 100, 100);
        assert_eq!(p.to_screen((0.1, 0.1)), Ok(Some((1, (310, 310)))));
    }

    #[test]
    fn nothing_chosen_maps_nothing() {
        assert_eq!(
            lay_out(&[]).to_screen((0.5, 0.5)),
            Err(MapError::EmptyPicture)
        );
    }
}
