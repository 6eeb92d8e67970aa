//! Plots, drawn as SVG with plotters and rasterised to PNG with resvg (system DejaVu fonts).
//!
//! Each function writes `<stem>.svg` and `<stem>.png`. tern is always blue and etcd always
//! vermillion (an Okabe-Ito pair, told apart by colour-blind readers too); several series of
//! one system are shades of its colour with different markers.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resvg::{tiny_skia, usvg};

use super::record::{ElectionTrial, RunRecord};
use crate::system::System;
use crate::workload::LoopKind;

/// Pixel size of the single-panel plots (SVG user units and PNG pixels).
pub const PLOT_SIZE: (u32, u32) = (1000, 620);

/// Pixel size of the two-panel cluster-size plot.
pub const TWO_PANEL_SIZE: (u32, u32) = (1400, 620);

/// tern's colour in every plot.
pub const TERN_COLOUR: RGBColor = RGBColor(0, 114, 178);

/// etcd's colour in every plot.
pub const ETCD_COLOUR: RGBColor = RGBColor(213, 94, 0);

/// Where Debian's fonts-dejavu-core puts its fonts, tried when the system font search finds
/// nothing.
const DEJAVU_DIR: &str = "/usr/share/fonts/truetype/dejavu";

/// The font plotters names in the SVG; resvg maps it to the family found on the system.
const FONT: &str = "sans-serif";

/// Deepest tail the CDF's y axis shows, in nines (6: 99.9999%).
const CDF_NINES_MAX: f64 = 6.0;

fn system_colour(system: System) -> RGBColor {
    match system {
        System::Tern => TERN_COLOUR,
        System::Etcd => ETCD_COLOUR,
    }
}

/// The `index`-th shade of a system's colour: the base, darker, lighter, darker still.
fn shade(colour: RGBColor, index: usize) -> RGBColor {
    let toward = |target: u8, share: f64| {
        let mix = |channel: u8| {
            (f64::from(channel) + (f64::from(target) - f64::from(channel)) * share).round() as u8
        };
        RGBColor(mix(colour.0), mix(colour.1), mix(colour.2))
    };
    match index % 4 {
        0 => colour,
        1 => toward(0, 0.4),
        2 => toward(255, 0.45),
        _ => toward(0, 0.65),
    }
}

/// Point markers, one per series of the same system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Circle,
    Triangle,
    Ring,
    Cross,
}

impl Marker {
    fn for_index(index: usize) -> Marker {
        [
            Marker::Circle,
            Marker::Triangle,
            Marker::Ring,
            Marker::Cross,
        ][index % 4]
    }
}

fn drawing_error(error: impl std::fmt::Display) -> String {
    format!("cannot draw the plot: {error}")
}

/// The median (mean of the middle two for an even count); 0 for none.
fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

/// Median, min and max.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(values), min, max)
}

/// Groups items by a key, groups in order of first appearance.
fn group_by<'a, T, K: PartialEq>(
    items: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> K,
) -> Vec<(K, Vec<&'a T>)> {
    let mut groups: Vec<(K, Vec<&'a T>)> = Vec::new();
    for item in items {
        let item_key = key(item);
        match groups
            .iter_mut()
            .find(|(group_key, _)| *group_key == item_key)
        {
            Some((_, members)) => members.push(item),
            None => groups.push((item_key, vec![item])),
        }
    }
    groups
}

/// A tick label: about three significant digits, thousands as "k", millions as "M".
fn format_tick(value: f64) -> String {
    let trim = |text: String| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    };
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        trim(format!("{:.2}", value / 1e6)) + "M"
    } else if magnitude >= 1e4 {
        trim(format!("{:.1}", value / 1e3)) + "k"
    } else if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        trim(format!("{value:.2}"))
    } else {
        trim(format!("{value:.3}"))
    }
}

/// A coordinate with the tick marks we choose (plotters' own `with_key_points` loses the
/// label formatting of f64 axes): the client counts, the cluster sizes, the categories.
struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

fn ticked<R>(range: R, ticks: Vec<f64>) -> Ticked<R::CoordDescType>
where
    R: AsRangedCoord<Value = f64>,
{
    Ticked {
        inner: range.into(),
        ticks,
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold lines at the ticks, no light lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> std::ops::Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// One line of a line chart.
struct Series {
    name: String,
    system: System,
    /// Which of its system's series this is: picks the shade and the marker.
    shade_index: usize,
    points: Vec<(f64, f64)>,
    /// (x, min, max) whiskers: the spread over repeats.
    whiskers: Vec<(f64, f64, f64)>,
    /// Where markers go: every point, or a few landmarks of a dense line.
    markers: Vec<(f64, f64)>,
}

impl Series {
    /// Shades and markers cycle out of step: up to 16 series of a system look different.
    fn colour(&self) -> RGBColor {
        shade(
            system_colour(self.system),
            self.shade_index + self.shade_index / 4,
        )
    }

    fn marker(&self) -> Marker {
        Marker::for_index(self.shade_index)
    }
}

/// Builds series from (system, name) keys, numbering each system's series for its shade.
/// A series before numbering: system, name, points, whiskers.
type RawSeries = (System, String, Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

fn number_series(raw: Vec<RawSeries>) -> Vec<Series> {
    let mut per_system = [0usize; 2];
    raw.into_iter()
        .map(|(system, name, points, whiskers)| {
            let slot = &mut per_system[usize::from(system == System::Etcd)];
            let shade_index = *slot;
            *slot += 1;
            Series {
                name,
                system,
                shade_index,
                markers: points.clone(),
                points,
                whiskers,
            }
        })
        .collect()
}

/// Draws `series` as lines with markers and whiskers, each with a legend entry.
fn draw_lines<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    series: &[Series],
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for line in series {
        let colour = line.colour();
        let marker = line.marker();
        chart
            .draw_series(LineSeries::new(line.points.clone(), colour.stroke_width(2)))
            .map_err(drawing_error)?
            .label(line.name.clone())
            .legend(move |at| {
                // A short line through the marker. One element type for every marker
                // (plotters' dynamic elements cannot borrow the SVG string): the other
                // shapes are drawn transparent.
                let (style, outline) = (colour.filled(), colour.stroke_width(2));
                let hidden = TRANSPARENT.stroke_width(0);
                let pick = |wanted: bool, style: ShapeStyle| if wanted { style } else { hidden };
                let circle_style = match marker {
                    Marker::Circle => style,
                    Marker::Ring => outline,
                    Marker::Triangle | Marker::Cross => hidden,
                };
                EmptyElement::at(at)
                    + PathElement::new(vec![(-12, 0), (12, 0)], outline)
                    + Circle::new((0, 0), 5, circle_style)
                    + TriangleMarker::new((0, 0), 6, pick(marker == Marker::Triangle, style))
                    + Cross::new((0, 0), 5, pick(marker == Marker::Cross, outline))
            });
        let (style, outline) = (colour.filled(), colour.stroke_width(2));
        let points = line.markers.iter().copied();
        match marker {
            Marker::Circle => chart
                .draw_series(points.map(|point| Circle::new(point, 4, style)))
                .map(|_| ()),
            Marker::Triangle => chart
                .draw_series(points.map(|point| TriangleMarker::new(point, 6, style)))
                .map(|_| ()),
            Marker::Ring => chart
                .draw_series(points.map(|point| Circle::new(point, 5, outline)))
                .map(|_| ()),
            Marker::Cross => chart
                .draw_series(points.map(|point| Cross::new(point, 5, outline)))
                .map(|_| ()),
        }
        .map_err(drawing_error)?;
        chart
            .draw_series(line.whiskers.iter().filter(|(_, min, max)| max > min).map(
                |&(x, min, max)| PathElement::new(vec![(x, min), (x, max)], colour.stroke_width(1)),
            ))
            .map_err(drawing_error)?;
    }
    Ok(())
}

fn draw_legend<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 15))
        .draw()
        .map_err(drawing_error)
}

/// 0 .. max with 15% headroom (1 if everything is 0).
fn zero_based(max: f64) -> std::ops::Range<f64> {
    let top = if max.is_finite() && max > 0.0 {
        max * 1.15
    } else {
        1.0
    };
    0.0..top
}

/// A log range around min ..= max (both positive), widened when they are equal.
fn log_around(min: f64, max: f64) -> std::ops::Range<f64> {
    (min / 1.4)..(max * 1.4)
}

/// Ticks of a log axis over `range` (positive): 1, 2, 3, 5 times powers of ten, or only the
/// powers of ten when that would be more than a dozen.
fn log_ticks(range: &std::ops::Range<f64>) -> Vec<f64> {
    /// Enough decades for any latency or rate; bounds the loop whatever the input.
    const DECADES_MAX: i32 = 40;
    let (low, high) = (range.start, range.end);
    if !(low > 0.0 && high > low && high.is_finite()) {
        return Vec::new();
    }
    let first = low.log10().floor() as i32;
    let last = (high.log10().ceil() as i32).min(first + DECADES_MAX);
    let mut ticks = Vec::new();
    for exponent in first..=last {
        for multiple in [1.0, 2.0, 3.0, 5.0] {
            let tick = multiple * 10f64.powi(exponent);
            if (low..=high).contains(&tick) {
                ticks.push(tick);
            }
        }
    }
    if ticks.len() > 12 {
        ticks.retain(|tick| (tick.log10() - tick.log10().round()).abs() < 1e-9);
    }
    ticks
}

/// The positive min and max of `values`, or an error saying what was missing.
fn positive_bounds(values: impl Iterator<Item = f64>, what: &str) -> Result<(f64, f64), String> {
    let positive: Vec<f64> = values.filter(|v| v.is_finite() && *v > 0.0).collect();
    if positive.is_empty() {
        return Err(format!("nothing to plot: no {what}"));
    }
    let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let max = positive.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ok((min, max))
}

/// Draws into an SVG string of `size` on a white background.
fn svg_of(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        draw(&root)?;
        root.present().map_err(drawing_error)?;
    }
    Ok(svg)
}

/// `<stem>.<extension>` (appended, so a stem with a dot keeps it).
fn with_extension(stem: &Path, extension: &str) -> PathBuf {
    let mut path = OsString::from(stem.as_os_str());
    path.push(".");
    path.push(extension);
    PathBuf::from(path)
}

/// The fonts for rasterising, and the family standing for "sans-serif"; loaded once.
fn fonts() -> &'static (Arc<usvg::fontdb::Database>, String) {
    static FONTS: OnceLock<(Arc<usvg::fontdb::Database>, String)> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut database = usvg::fontdb::Database::new();
        database.load_system_fonts();
        if database.is_empty() {
            database.load_fonts_dir(DEJAVU_DIR);
        }
        let families: Vec<String> = database
            .faces()
            .flat_map(|face| face.families.iter().map(|(family, _)| family.clone()))
            .collect();
        let family = families
            .iter()
            .find(|family| family.as_str() == "DejaVu Sans")
            .or_else(|| families.first())
            .cloned();
        match &family {
            Some(family) => database.set_sans_serif_family(family.clone()),
            // Once: this runs once per process.
            None => eprintln!(
                "warning: no fonts found (system font directories, {DEJAVU_DIR}): the PNG plots \
                 are drawn without text (the SVG plots are complete). Install fonts-dejavu-core \
                 to get text."
            ),
        }
        (
            Arc::new(database),
            family.unwrap_or_else(|| FONT.to_string()),
        )
    })
}

/// The PNG image of an SVG document, at the document's size.
fn rasterise(svg: &str) -> Result<Vec<u8>, String> {
    let (database, family) = fonts();
    let mut options = usvg::Options {
        font_family: family.clone(),
        ..usvg::Options::default()
    };
    options.fontdb = database.clone();
    let tree = usvg::Tree::from_str(svg, &options)
        .map_err(|error| format!("cannot read back the SVG plot: {error}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("cannot make a {}x{} image", size.width(), size.height()))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|error| format!("cannot encode the PNG: {error}"))
}

/// Writes `<stem>.svg` and `<stem>.png`, creating the directory.
fn write_plot(stem: &Path, svg: &str) -> Result<(), String> {
    if let Some(parent) = stem
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|error| {
            format!("cannot create the directory {}: {error}", parent.display())
        })?;
    }
    let svg_path = with_extension(stem, "svg");
    fs::write(&svg_path, svg)
        .map_err(|error| format!("cannot write {}: {error}", svg_path.display()))?;
    let png_path = with_extension(stem, "png");
    let png = rasterise(svg).map_err(|error| format!("{}: {error}", png_path.display()))?;
    fs::write(&png_path, png)
        .map_err(|error| format!("cannot write {}: {error}", png_path.display()))
}

/// Draws one chart with the common mesh, axis descriptions and fonts.
fn configure_mesh<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    x_format: &dyn Fn(&f64) -> String,
    y_format: &dyn Fn(&f64) -> String,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_format)
        .y_label_formatter(y_format)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(246, 246, 246))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(drawing_error)
}

/// A chart drawing into an SVG string.
type SvgChart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// Builds a chart on `area` with `caption`.
fn chart_on<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    x: X,
    y: Y,
) -> Result<SvgChart<'a, 'b, X::CoordDescType, Y::CoordDescType>, String> {
    ChartBuilder::on(area)
        .caption(caption, (FONT, 24))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(76)
        .build_cartesian_2d(x, y)
        .map_err(drawing_error)
}

/// "puts" or "puts, 5 nodes" when runs of several cluster sizes are on one plot.
fn with_nodes(name: &str, nodes: usize, several_sizes: bool) -> String {
    if several_sizes {
        format!("{name}, {nodes} nodes")
    } else {
        name.to_string()
    }
}

fn several_sizes(nodes: impl Iterator<Item = usize>) -> bool {
    let mut nodes: Vec<usize> = nodes.collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes.len() > 1
}

/// Throughput against the number of clients (log scale), one line per system and workload
/// name (`workload.name`, not the label: the label names the client count too), median over
/// repeats with min-max whiskers. Open-loop runs are placed at their in-flight bound, and the
/// axis says so.
pub fn throughput_vs_clients(records: &[RunRecord], stem: &Path) -> Result<(), String> {
    let closed: Vec<(&RunRecord, f64)> = records
        .iter()
        .map(|record| match record.workload.loop_kind {
            LoopKind::Closed { clients } => (record, clients as f64),
            LoopKind::Open { inflight_max, .. } => (record, inflight_max as f64),
        })
        .collect();
    if closed.is_empty() {
        return Err(format!("{}: nothing to plot: no runs", stem.display()));
    }
    let open_runs = records
        .iter()
        .filter(|record| matches!(record.workload.loop_kind, LoopKind::Open { .. }))
        .count();
    let (loop_words, x_desc) = if open_runs == 0 {
        ("closed loop", "concurrent clients (log scale)")
    } else if open_runs == records.len() {
        ("open loop", "requests in flight at most (log scale)")
    } else {
        (
            "closed and open loop",
            "clients (closed loop) or in-flight bound (open loop), log scale",
        )
    };
    let several = several_sizes(closed.iter().map(|(record, _)| record.nodes));
    let groups = group_by(closed.iter(), |(record, _)| {
        (record.system, record.workload.name.clone(), record.nodes)
    });
    let mut raw = Vec::new();
    for ((system, name, nodes), members) in groups {
        let mut by_clients = group_by(members, |(_, clients)| clients.to_bits());
        by_clients.sort_by(|a, b| f64::from_bits(a.0).total_cmp(&f64::from_bits(b.0)));
        let mut points = Vec::new();
        let mut whiskers = Vec::new();
        for (clients, runs) in by_clients {
            let clients = f64::from_bits(clients);
            let ops: Vec<f64> = runs.iter().map(|(record, _)| record.ops_per_s).collect();
            let (mid, min, max) = spread(&ops);
            points.push((clients, mid));
            whiskers.push((clients, min, max));
        }
        raw.push((
            system,
            format!("{system} {}", with_nodes(&name, nodes, several)),
            points,
            whiskers,
        ));
    }
    let series = number_series(raw);
    let (clients_min, clients_max) =
        positive_bounds(closed.iter().map(|(_, c)| *c), "client counts")?;
    let mut ticks: Vec<f64> = closed.iter().map(|(_, clients)| *clients).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let ops_max = series
        .iter()
        .flat_map(|line| line.whiskers.iter().map(|(_, _, max)| *max))
        .fold(0.0, f64::max);
    let title = match closed.first() {
        Some((record, _)) if !several => format!(
            "Throughput vs clients ({loop_words}, {} nodes)",
            record.nodes
        ),
        _ => format!("Throughput vs clients ({loop_words})"),
    };
    let svg = svg_of(PLOT_SIZE, |root| {
        let mut chart = chart_on(
            root,
            &title,
            ticked(log_around(clients_min, clients_max).log_scale(), ticks),
            zero_based(ops_max),
        )?;
        configure_mesh(
            &mut chart,
            x_desc,
            "operations per second (median; whiskers: min-max)",
            &|x| format_tick(*x),
            &|y| format_tick(*y),
        )?;
        draw_lines(&mut chart, &series)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    write_plot(stem, &svg)
}

/// "Nines" of a percentile: 90% is 1, 99% is 2, 99.9% is 3.
fn nines(percent: f64) -> f64 {
    -(1.0 - percent / 100.0).log10()
}

/// The percentile at `nines`, as a tick label: "50", "90", "99", "99.9".
fn percentile_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let decimals = (nines.ceil() as i64 - 2).max(0) as usize;
    format!("{percent:.decimals$}")
}

/// Latency CDFs: x = latency (ms, log scale), y = percentile on a "nines" scale so that the
/// tail is as visible as the body; one line per system and label (the repeat with the median
/// throughput stands for its point).
pub fn latency_cdf(records: &[RunRecord], stem: &Path) -> Result<(), String> {
    let several = several_sizes(records.iter().map(|record| record.nodes));
    let groups = group_by(records.iter(), |record| {
        (record.system, record.label.clone(), record.nodes)
    });
    let mut raw = Vec::new();
    for ((system, label, nodes), mut runs) in groups {
        runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
        let representative = runs[runs.len() / 2];
        let points: Vec<(f64, f64)> = representative
            .cdf
            .iter()
            .filter(|(percent, ms)| *percent < 100.0 && *ms > 0.0)
            .map(|&(percent, ms)| (ms, nines(percent).min(CDF_NINES_MAX)))
            .collect();
        if !points.is_empty() {
            raw.push((
                system,
                format!("{system} {}", with_nodes(&label, nodes, several)),
                points,
                Vec::new(),
            ));
        }
    }
    let mut series = number_series(raw);
    // Markers only at the landmark percentiles (50, 90, 99, ...): a CDF has hundreds of points.
    let landmarks: Vec<f64> = std::iter::once(2f64.log10())
        .chain((1..=CDF_NINES_MAX as usize).map(|n| n as f64))
        .collect();
    for line in &mut series {
        line.markers = landmarks
            .iter()
            .filter_map(|&landmark| {
                line.points
                    .iter()
                    .find(|(_, nines)| *nines >= landmark - 1e-9)
                    .copied()
            })
            .collect();
        line.markers.dedup();
    }
    let (ms_min, ms_max) = positive_bounds(
        series
            .iter()
            .flat_map(|line| line.points.iter().map(|(ms, _)| *ms)),
        "latency CDF points",
    )
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    let nines_top = series
        .iter()
        .flat_map(|line| line.points.iter().map(|(_, nines)| *nines))
        .fold(2.0, f64::max);
    // A hair below, so that 99.9% (3 nines, give or take a rounding) does not open a fourth.
    let nines_top = (nines_top - 1e-6).ceil().min(CDF_NINES_MAX);
    let mut y_ticks = vec![0.0, 2f64.log10()];
    y_ticks.extend((1..=nines_top as usize).map(|n| n as f64));
    let svg = svg_of(PLOT_SIZE, |root| {
        let mut chart = chart_on(
            root,
            "Latency CDF",
            ticked(
                log_around(ms_min, ms_max).log_scale(),
                log_ticks(&log_around(ms_min, ms_max)),
            ),
            ticked(0.0..nines_top, y_ticks),
        )?;
        configure_mesh(
            &mut chart,
            "latency (ms, log scale)",
            "percentile",
            &|x| format_tick(*x),
            &|y| percentile_label(*y),
        )?;
        draw_lines(&mut chart, &series)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    write_plot(stem, &svg)
}

/// Two panels against the cluster size: ops/s and p99 latency, one line per system and
/// label, median over repeats (whiskers: min-max).
pub fn by_cluster_size(records: &[RunRecord], stem: &Path) -> Result<(), String> {
    if records.is_empty() {
        return Err(format!("{}: nothing to plot: no runs", stem.display()));
    }
    let groups = group_by(records.iter(), |record| {
        (record.system, record.label.clone())
    });
    let mut throughput = Vec::new();
    let mut p99 = Vec::new();
    for ((system, label), members) in groups {
        let mut by_nodes = group_by(members, |record| record.nodes);
        by_nodes.sort_by_key(|(nodes, _)| *nodes);
        let (mut ops_points, mut ops_whiskers, mut p99_points, mut p99_whiskers) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (nodes, runs) in by_nodes {
            let x = nodes as f64;
            let ops: Vec<f64> = runs.iter().map(|record| record.ops_per_s).collect();
            let (mid, min, max) = spread(&ops);
            ops_points.push((x, mid));
            ops_whiskers.push((x, min, max));
            let latency: Vec<f64> = runs.iter().map(|record| record.latency.p99_ms).collect();
            let (mid, min, max) = spread(&latency);
            p99_points.push((x, mid));
            p99_whiskers.push((x, min, max));
        }
        let name = format!("{system} {label}");
        throughput.push((system, name.clone(), ops_points, ops_whiskers));
        p99.push((system, name, p99_points, p99_whiskers));
    }
    let throughput = number_series(throughput);
    let p99 = number_series(p99);
    let mut ticks: Vec<f64> = records.iter().map(|record| record.nodes as f64).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let nodes_range = (ticks[0] - 1.0)..(ticks[ticks.len() - 1] + 1.0);
    let top = |series: &[Series]| {
        series
            .iter()
            .flat_map(|line| line.whiskers.iter().map(|(_, _, max)| *max))
            .fold(0.0, f64::max)
    };
    let (ops_top, p99_top) = (top(&throughput), top(&p99));
    let svg = svg_of(TWO_PANEL_SIZE, |root| {
        let root = root
            .titled("Throughput and p99 latency vs cluster size", (FONT, 26))
            .map_err(drawing_error)?;
        let panels = root.split_evenly((1, 2));
        // Both panels: nodes on x, one figure per system on y.
        let panel = |index: usize, title: &str, top, y_label: &str, series, legend| {
            let mut chart = chart_on(
                &panels[index],
                title,
                ticked(nodes_range.clone(), ticks.clone()),
                zero_based(top),
            )?;
            configure_mesh(&mut chart, "nodes", y_label, &|x| format!("{x:.0}"), &|y| {
                format_tick(*y)
            })?;
            draw_lines(&mut chart, series)?;
            draw_legend(&mut chart, legend)
        };
        panel(
            0,
            "throughput",
            ops_top,
            "operations per second (median; whiskers: min-max)",
            &throughput,
            SeriesLabelPosition::LowerLeft,
        )?;
        panel(
            1,
            "p99 latency",
            p99_top,
            "p99 latency, ms (median; whiskers: min-max)",
            &p99,
            SeriesLabelPosition::UpperLeft,
        )
    })
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    write_plot(stem, &svg)
}

/// The systems present, tern first.
fn systems_in(systems: impl Iterator<Item = System>) -> Vec<System> {
    let mut present: Vec<System> = systems.collect();
    present.sort();
    present.dedup();
    present
}

/// The x offset of `system`'s bar or column within a category, given the systems present.
fn offset_of(system: System, present: &[System]) -> f64 {
    if present.len() < 2 {
        0.0
    } else if system == System::Tern {
        -0.2
    } else {
        0.2
    }
}

/// A category axis: key points at 0 .. count, labelled with `labels`.
fn category_axis(count: usize) -> (std::ops::Range<f64>, Vec<f64>) {
    (
        -0.6..(count as f64 - 0.4),
        (0..count).map(|index| index as f64).collect(),
    )
}

fn category_label(labels: &[String], x: f64) -> String {
    let index = x.round();
    if (x - index).abs() < 1e-6 && index >= 0.0 {
        labels.get(index as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Ops/s per label, tern and etcd bars side by side (median over repeats, whiskers min-max),
/// with the tern/etcd ratio above each pair.
pub fn grouped_bars(records: &[RunRecord], stem: &Path, title: &str) -> Result<(), String> {
    if records.is_empty() {
        return Err(format!("{}: nothing to plot: no runs", stem.display()));
    }
    let several = several_sizes(records.iter().map(|record| record.nodes));
    let categories = group_by(records.iter(), |record| {
        (record.label.clone(), record.nodes)
    });
    let labels: Vec<String> = categories
        .iter()
        .map(|((label, nodes), _)| with_nodes(label, *nodes, several))
        .collect();
    let present = systems_in(records.iter().map(|record| record.system));
    let half_width = if present.len() < 2 { 0.3 } else { 0.18 };
    // (system, category index, median, min, max)
    let mut bars: Vec<(System, usize, f64, f64, f64)> = Vec::new();
    for (index, (_, members)) in categories.iter().enumerate() {
        for &system in &present {
            let ops: Vec<f64> = members
                .iter()
                .filter(|record| record.system == system)
                .map(|record| record.ops_per_s)
                .collect();
            if !ops.is_empty() {
                let (mid, min, max) = spread(&ops);
                bars.push((system, index, mid, min, max));
            }
        }
    }
    let top = bars.iter().map(|bar| bar.4.max(bar.2)).fold(0.0, f64::max);
    let y_range = 0.0..(if top > 0.0 { top * 1.25 } else { 1.0 });
    let (x_range, ticks) = category_axis(labels.len());
    let svg = svg_of(PLOT_SIZE, |root| {
        let mut chart = chart_on(root, title, ticked(x_range, ticks), y_range)?;
        configure_mesh(
            &mut chart,
            "",
            "operations per second (median; whiskers: min-max)",
            &|x| category_label(&labels, *x),
            &|y| format_tick(*y),
        )?;
        for &system in &present {
            let colour = system_colour(system);
            let offset = offset_of(system, &present);
            let mine: Vec<_> = bars.iter().filter(|bar| bar.0 == system).collect();
            chart
                .draw_series(mine.iter().map(|&&(_, index, mid, _, _)| {
                    let x = index as f64 + offset;
                    Rectangle::new(
                        [(x - half_width, 0.0), (x + half_width, mid)],
                        colour.filled(),
                    )
                }))
                .map_err(drawing_error)?
                .label(system.name())
                .legend(move |(x, y)| {
                    Rectangle::new([(x - 7, y - 7), (x + 7, y + 7)], colour.filled())
                });
            chart
                .draw_series(mine.iter().filter(|bar| bar.4 > bar.3).map(
                    |&&(_, index, _, min, max)| {
                        let x = index as f64 + offset;
                        PathElement::new(vec![(x, min), (x, max)], BLACK.stroke_width(2))
                    },
                ))
                .map_err(drawing_error)?;
        }
        let ratio_style = TextStyle::from((FONT, 15).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for index in 0..labels.len() {
            let of = |system| bars.iter().find(|bar| bar.0 == system && bar.1 == index);
            if let (Some(tern), Some(etcd)) = (of(System::Tern), of(System::Etcd)) {
                if etcd.2 > 0.0 {
                    let above = tern.4.max(etcd.4).max(tern.2).max(etcd.2) + top * 0.03;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("tern/etcd {:.2}x", tern.2 / etcd.2),
                            (index as f64, above),
                            ratio_style.clone(),
                        )))
                        .map_err(drawing_error)?;
                }
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    write_plot(stem, &svg)
}

/// Which time of a trial a dot shows.
type TimeOf = fn(&ElectionTrial) -> Option<f64>;

/// A small deterministic horizontal jitter in -width/2 .. width/2 for trial `index`, so that
/// equal times do not hide each other.
fn jitter(index: usize, width: f64) -> f64 {
    // The golden ratio's fractional part spreads consecutive indices evenly.
    ((index as f64 * 0.618_033_988_75).fract() - 0.5) * width
}

/// Election times per timing range and system: each trial's time to a new leader (hollow)
/// and to the first committed write (filled), log scale, with a bar at each median.
pub fn election_times(trials: &[ElectionTrial], stem: &Path) -> Result<(), String> {
    let (ms_min, ms_max) = positive_bounds(
        trials
            .iter()
            .flat_map(|trial| [trial.new_leader_ms, trial.first_write_ms])
            .flatten(),
        "successful election trials",
    )
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    let several = several_sizes(trials.iter().map(|trial| trial.nodes));
    let categories = group_by(trials.iter(), |trial| (trial.timing, trial.nodes));
    let labels: Vec<String> = categories
        .iter()
        .map(|((timing, nodes), _)| with_nodes(&timing.label(), *nodes, several))
        .collect();
    let present = systems_in(trials.iter().map(|trial| trial.system));
    let (x_range, ticks) = category_axis(labels.len());
    /// Half the distance between a column's new-leader and first-write dots.
    const KIND_OFFSET: f64 = 0.07;
    /// Width of a column's jitter and of its median bar.
    const JITTER_WIDTH: f64 = 0.06;
    let svg = svg_of(PLOT_SIZE, |root| {
        let mut chart = chart_on(
            root,
            "Leader election after kill -9 of the leader",
            ticked(x_range, ticks),
            ticked(
                log_around(ms_min, ms_max).log_scale(),
                log_ticks(&log_around(ms_min, ms_max)),
            ),
        )?;
        configure_mesh(
            &mut chart,
            "election timeout range",
            "ms after the kill (log scale; bar: median)",
            &|x| category_label(&labels, *x),
            &|y| format_tick(*y),
        )?;
        for &system in &present {
            let colour = system_colour(system);
            let offset = offset_of(system, &present);
            let failed = trials
                .iter()
                .filter(|trial| trial.system == system)
                .filter(|trial| trial.error.is_some() || trial.first_write_ms.is_none())
                .count();
            let kinds: [(&str, TimeOf, f64, ShapeStyle); 2] = [
                (
                    "new leader",
                    |trial| trial.new_leader_ms,
                    -KIND_OFFSET,
                    colour.stroke_width(2),
                ),
                (
                    "first write",
                    |trial| trial.first_write_ms,
                    KIND_OFFSET,
                    colour.filled(),
                ),
            ];
            for (kind, time_of, kind_offset, style) in kinds {
                let mut dots = Vec::new();
                let mut medians = Vec::new();
                for (index, (_, members)) in categories.iter().enumerate() {
                    let x = index as f64 + offset + kind_offset;
                    let times: Vec<f64> = members
                        .iter()
                        .filter(|trial| trial.system == system)
                        .filter_map(|trial| time_of(trial))
                        .filter(|ms| *ms > 0.0)
                        .collect();
                    for (trial_index, ms) in times.iter().enumerate() {
                        dots.push((x + jitter(trial_index, JITTER_WIDTH), *ms));
                    }
                    if !times.is_empty() {
                        medians.push((x, median(&times)));
                    }
                }
                let name = if kind == "first write" && failed > 0 {
                    format!("{system} {kind} ({failed} failed)")
                } else {
                    format!("{system} {kind}")
                };
                chart
                    .draw_series(dots.iter().map(|&(x, ms)| Circle::new((x, ms), 4, style)))
                    .map_err(drawing_error)?
                    .label(name)
                    .legend(move |at| Circle::new(at, 5, style));
                chart
                    .draw_series(medians.iter().map(|&(x, ms)| {
                        PathElement::new(
                            vec![(x - JITTER_WIDTH, ms), (x + JITTER_WIDTH, ms)],
                            BLACK.stroke_width(3),
                        )
                    }))
                    .map_err(drawing_error)?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    write_plot(stem, &svg)
}

/// One line of a [`TimePanel`]: its system, its name, its (minute, value) points.
pub type TimeLine = (System, String, Vec<(f64, f64)>);

/// One panel of [`over_time`]: its title, the y axis' description and one line per system
/// (name, then (minute, value) points).
pub struct TimePanel {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<TimeLine>,
}

/// Side-by-side panels of values against minutes since a run started (a soak's memory and
/// disk curves), one line per system.
pub fn over_time(panels: &[TimePanel], stem: &Path, title: &str) -> Result<(), String> {
    let last_minute = panels
        .iter()
        .flat_map(|panel| panel.lines.iter())
        .flat_map(|(_, _, points)| points.iter().map(|(minute, _)| *minute))
        .fold(0.0, f64::max);
    if panels.is_empty() || last_minute <= 0.0 {
        return Err(format!("{}: nothing to plot: no samples", stem.display()));
    }
    let step = (last_minute / 10.0).ceil().max(1.0);
    let ticks: Vec<f64> = (0..=((last_minute / step).ceil() as usize))
        .map(|tick| tick as f64 * step)
        .collect();
    let x_range = 0.0..(ticks[ticks.len() - 1]).max(last_minute);
    let size = (PLOT_SIZE.0.max(700 * panels.len() as u32), PLOT_SIZE.1);
    let svg = svg_of(size, |root| {
        let root = root.titled(title, (FONT, 26)).map_err(drawing_error)?;
        let areas = root.split_evenly((1, panels.len()));
        for (area, panel) in areas.iter().zip(panels) {
            let series = number_series(
                panel
                    .lines
                    .iter()
                    .map(|(system, name, points)| {
                        (*system, name.clone(), points.clone(), Vec::new())
                    })
                    .collect(),
            );
            let top = panel
                .lines
                .iter()
                .flat_map(|(_, _, points)| points.iter().map(|(_, value)| *value))
                .fold(0.0, f64::max);
            let mut chart = chart_on(
                area,
                &panel.title,
                ticked(x_range.clone(), ticks.clone()),
                zero_based(top),
            )?;
            configure_mesh(
                &mut chart,
                "minutes",
                &panel.y_label,
                &|x| format!("{x:.0}"),
                &|y| format_tick(*y),
            )?;
            draw_lines(&mut chart, &series)?;
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    })
    .map_err(|error| format!("{}: {error}", stem.display()))?;
    write_plot(stem, &svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::ElectionTiming;
    use crate::report::record::tests::record;

    /// The PNG file signature.
    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

    /// Checks `<stem>.svg` names every series and `<stem>.png` is a PNG of `size`.
    fn assert_plot(stem: &Path, names: &[&str], size: (u32, u32)) {
        let svg = fs::read_to_string(with_extension(stem, "svg")).unwrap();
        assert!(svg.len() > 1000, "a tiny SVG: {svg}");
        for name in names {
            assert!(
                svg.contains(name),
                "{name:?} missing from {}",
                stem.display()
            );
        }
        let png = fs::read(with_extension(stem, "png")).unwrap();
        assert_eq!(png[..8], PNG_SIGNATURE, "not a PNG");
        // The IHDR chunk comes first: width and height, big-endian, at bytes 16 and 20.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), size);
    }

    fn compare_records() -> Vec<RunRecord> {
        let mut records = Vec::new();
        for (clients, tern_ops, etcd_ops) in [
            (1, 900.0, 400.0),
            (16, 9000.0, 3500.0),
            (64, 20000.0, 8000.0),
        ] {
            for repeat in 0..2 {
                let jitter = 1.0 + 0.05 * repeat as f64;
                for (name, factor) in [("puts", 1.0), ("gets", 3.0)] {
                    let label = format!("{name} c={clients}");
                    let tern = record(
                        System::Tern,
                        &label,
                        3,
                        clients,
                        repeat,
                        tern_ops * factor * jitter,
                        2.0,
                    );
                    let etcd = record(
                        System::Etcd,
                        &label,
                        3,
                        clients,
                        repeat,
                        etcd_ops * factor * jitter,
                        5.0,
                    );
                    records.push(tern);
                    records.push(etcd);
                }
            }
        }
        records
    }

    #[test]
    fn throughput_vs_clients_writes_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("plots/throughput");
        throughput_vs_clients(&compare_records(), &stem).unwrap();
        assert_plot(
            &stem,
            &[
                "tern puts",
                "tern gets",
                "etcd puts",
                "etcd gets",
                "clients",
            ],
            PLOT_SIZE,
        );
    }

    #[test]
    fn open_loop_runs_are_placed_at_their_in_flight_bound() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("open");
        let mut records = compare_records();
        for record in &mut records {
            if let LoopKind::Closed { clients } = record.workload.loop_kind {
                record.workload.loop_kind = LoopKind::Open {
                    rate_ops_per_s: 1000,
                    inflight_max: clients,
                };
            }
        }
        throughput_vs_clients(&records, &stem).unwrap();
        assert_plot(&stem, &["tern puts", "open loop", "in flight"], PLOT_SIZE);
    }

    #[test]
    fn latency_cdf_writes_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("cdf");
        latency_cdf(&compare_records(), &stem).unwrap();
        assert_plot(
            &stem,
            &["tern puts c=16", "etcd gets c=64", "percentile", "99.9"],
            PLOT_SIZE,
        );
    }

    #[test]
    fn by_cluster_size_writes_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("scale");
        let mut records = Vec::new();
        for nodes in [3, 5, 7] {
            let slower = nodes as f64 / 3.0;
            records.push(record(
                System::Tern,
                "puts c=64",
                nodes,
                64,
                0,
                20000.0 / slower,
                2.0 * slower,
            ));
            records.push(record(
                System::Etcd,
                "puts c=64",
                nodes,
                64,
                0,
                8000.0 / slower,
                5.0 * slower,
            ));
        }
        by_cluster_size(&records, &stem).unwrap();
        assert_plot(
            &stem,
            &["tern puts c=64", "etcd puts c=64", "nodes", "p99"],
            TWO_PANEL_SIZE,
        );
    }

    #[test]
    fn grouped_bars_writes_svg_and_png_with_the_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("mix");
        let records = vec![
            record(System::Tern, "ycsb-a", 3, 16, 0, 3000.0, 2.0),
            record(System::Etcd, "ycsb-a", 3, 16, 0, 1500.0, 2.0),
            record(System::Tern, "ycsb-b", 3, 16, 0, 5000.0, 2.0),
            record(System::Etcd, "ycsb-b", 3, 16, 0, 4000.0, 2.0),
        ];
        grouped_bars(&records, &stem, "YCSB core workloads").unwrap();
        // 3000 / 1500 and 5000 / 4000.
        assert_plot(
            &stem,
            &[
                "tern",
                "etcd",
                "ycsb-a",
                "ycsb-b",
                "2.00x",
                "1.25x",
                "YCSB core workloads",
            ],
            PLOT_SIZE,
        );
    }

    #[test]
    fn election_times_writes_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("election");
        let fast = ElectionTiming {
            timeout_ms_min: 12,
            timeout_ms_max: 25,
            heartbeat_ms: 3,
        };
        let mut trials = Vec::new();
        for (timing, base) in [(fast, 30.0), (ElectionTiming::DEFAULT, 250.0)] {
            for system in [System::Tern, System::Etcd] {
                for trial in 0..5 {
                    let ms = base * (1.0 + 0.1 * trial as f64);
                    trials.push(ElectionTrial {
                        system,
                        nodes: 3,
                        timing,
                        trial,
                        killed_index: 0,
                        new_leader_ms: Some(ms),
                        first_write_ms: (trial != 4 || system == System::Tern).then_some(ms + 5.0),
                        terms_used: Some(1),
                        error: None,
                    });
                }
            }
        }
        election_times(&trials, &stem).unwrap();
        assert_plot(
            &stem,
            &[
                "tern new leader",
                "tern first write",
                "etcd first write (2 failed)",
                "12-25 ms",
                "150-300 ms",
            ],
            PLOT_SIZE,
        );
    }

    #[test]
    fn nothing_to_plot_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("empty");
        assert!(throughput_vs_clients(&[], &stem).is_err());
        assert!(latency_cdf(&[], &stem).is_err());
        assert!(by_cluster_size(&[], &stem).is_err());
        assert!(grouped_bars(&[], &stem, "none").is_err());
        assert!(election_times(&[], &stem).is_err());
        assert!(!with_extension(&stem, "svg").exists());
    }

    #[test]
    fn log_ticks_are_one_two_three_five() {
        assert_eq!(
            log_ticks(&(0.7..30.0)),
            vec![1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0]
        );
        let wide = log_ticks(&(0.001..1e9));
        assert_eq!(wide.len(), 13, "{wide:?}");
        assert!(log_ticks(&(0.0..1.0)).is_empty());
    }

    #[test]
    fn tick_and_percentile_labels() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(2.5), "2.5");
        assert_eq!(format_tick(250.0), "250");
        assert_eq!(format_tick(25_000.0), "25k");
        assert_eq!(format_tick(1_500_000.0), "1.5M");
        assert_eq!(percentile_label(0.0), "0");
        assert_eq!(percentile_label(1.0), "90");
        assert_eq!(percentile_label(2.0), "99");
        assert_eq!(percentile_label(3.0), "99.9");
        assert_eq!(percentile_label(2f64.log10()), "50");
        assert_eq!(
            with_extension(Path::new("a/p99.9"), "svg"),
            Path::new("a/p99.9.svg")
        );
    }
}
