#include "bench/compare_chart.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace weft::bench {
namespace {

constexpr const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2"};
constexpr int kColumns = 3;
constexpr double kPanelW = 400, kPanelH = 250;
constexpr double kPlotLeft = 58, kPlotRight = 12, kPlotTop = 28, kPlotBottom = 36;

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string tick_label(double v) {
  if (v >= 10000) return absl::StrFormat("%.0fk", v / 1000);
  if (v >= 1000) return absl::StrFormat("%.1fk", v / 1000);  // 1449 is 1.4k, not 1k
  if (v >= 10 || v == 0) return absl::StrFormat("%.0f", v);
  if (v >= 1) return absl::StrFormat("%.1f", v);
  return absl::StrFormat("%.2g", v);
}

// A "nice" step (1, 2 or 5 times a power of ten) giving about `ticks` intervals up to hi.
double nice_step(double hi, int ticks) {
  const double raw = hi / ticks;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

void render_panel(std::string& svg, const ChartData& chart, const ChartPanel& panel, double x0,
                  double y0) {
  const double px = x0 + kPlotLeft, py = y0 + kPlotTop;
  const double pw = kPanelW - kPlotLeft - kPlotRight, ph = kPanelH - kPlotTop - kPlotBottom;
  double lo = INFINITY, hi = 0;
  for (const auto& group : panel.bars) {
    for (const ChartBar& b : group) {
      if (std::isnan(b.median)) continue;
      lo = std::min({lo, b.min, b.median});
      hi = std::max({hi, b.max, b.median});
    }
  }
  const bool have_data = hi > 0;
  const bool log_scale = have_data && lo > 0 && hi / lo > 20;
  std::string title = panel.title + (log_scale ? " (log scale)" : "");
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">%s"
                        "</text>\n",
                        x0 + 8, y0 + 17, escape(title));
  if (!have_data) {
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#888\">not measured</text>\n",
                          px + 10, py + ph / 2);
    return;
  }
  // Value -> y coordinate.
  double axis_lo = 0, axis_hi;
  std::vector<double> ticks;
  if (log_scale) {
    axis_lo = std::pow(10, std::floor(std::log10(lo)));
    axis_hi = std::pow(10, std::ceil(std::log10(hi)));
    for (double t = axis_lo; t <= axis_hi * 1.001; t *= 10) ticks.push_back(t);
  } else {
    const double step = nice_step(hi * 1.08, 4);
    axis_hi = std::ceil(hi * 1.08 / step) * step;
    for (double t = 0; t <= axis_hi * 1.001; t += step) ticks.push_back(t);
  }
  auto y_of = [&](double v) {
    double f = log_scale ? (std::log10(std::max(v, axis_lo)) - std::log10(axis_lo)) /
                               (std::log10(axis_hi) - std::log10(axis_lo))
                         : v / axis_hi;
    return py + ph - f * ph;
  };
  for (double t : ticks) {
    const double y = y_of(t);
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                          "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
                          "text-anchor=\"end\" fill=\"#555\">%s</text>\n",
                          px, y, px + pw, y, px - 4, y + 3, tick_label(t));
  }
  absl::StrAppendFormat(&svg,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                        px, py + ph, px + pw, py + ph);
  const int groups = static_cast<int>(panel.bars.size());
  const int series = static_cast<int>(chart.series.size());
  const double group_w = pw / std::max(1, groups);
  const double bar_w = group_w * 0.7 / std::max(1, series);
  for (int g = 0; g < groups; ++g) {
    const double gx = px + g * group_w + group_w * 0.15;
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">"
                          "%s</text>\n",
                          px + (g + 0.5) * group_w, py + ph + 16, escape(chart.groups[g]));
    for (int s = 0; s < series && s < static_cast<int>(panel.bars[g].size()); ++s) {
      const ChartBar& b = panel.bars[g][s];
      if (std::isnan(b.median)) continue;
      const double x = gx + s * bar_w;
      const double top = y_of(b.median);
      absl::StrAppendFormat(&svg,
                            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                            "fill=\"%s\"><title>%s, %s: %s</title></rect>\n",
                            x + 1, top, bar_w - 2, py + ph - top, kColors[s % 5],
                            escape(chart.series[s]), escape(chart.groups[g]),
                            tick_label(b.median));
      const double cx = x + bar_w / 2;
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#222\"/>\n",
                            cx, y_of(b.min), cx, y_of(b.max));
      absl::StrAppendFormat(&svg,
                            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" text-anchor=\"middle\" "
                            "fill=\"#222\">%s</text>\n",
                            cx, std::min(top, y_of(b.max)) - 3, tick_label(b.median));
    }
  }
}

}  // namespace

std::string render_chart_svg(const ChartData& chart) {
  const int n = static_cast<int>(chart.panels.size());
  const int rows = (n + kColumns - 1) / kColumns;
  const double width = kColumns * kPanelW, height = 60 + rows * kPanelH;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">%s</text>\n",
      width, height, width, height, escape(chart.title));
  for (int s = 0; s < static_cast<int>(chart.series.size()); ++s) {
    const double x = 10 + s * 150;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.0f\" y=\"34\" width=\"14\" height=\"14\" fill=\"%s\"/>"
                          "<text x=\"%.0f\" y=\"46\" font-size=\"12\">%s</text>\n",
                          x, kColors[s % 5], x + 20, escape(chart.series[s]));
  }
  for (int i = 0; i < n; ++i) {
    render_panel(svg, chart, chart.panels[i], (i % kColumns) * kPanelW,
                 60 + (i / kColumns) * kPanelH);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace weft::bench
