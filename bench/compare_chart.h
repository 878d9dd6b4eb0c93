// compare_chart: the comparison's chart as a self-contained SVG (no dependency): one panel per
// table row, in each a group of bars per worker count, one bar per scheduler (median) with a
// whisker from the minimum to the maximum. A panel whose values span more than 20x uses a log
// scale (said in its title), so that a 30 us bar stays visible next to a 3 ms one.
#ifndef WEFT_BENCH_COMPARE_CHART_H_
#define WEFT_BENCH_COMPARE_CHART_H_

#include <string>
#include <vector>

namespace weft::bench {

struct ChartBar {
  double median, min, max;  // NaN when not measured
};

struct ChartPanel {
  std::string title;
  std::vector<std::vector<ChartBar>> bars;  // [group][series]
};

struct ChartData {
  std::string title;
  std::vector<std::string> series;  // legend, one color each
  std::vector<std::string> groups;  // x-axis groups, the same in every panel
  std::vector<ChartPanel> panels;
};

std::string render_chart_svg(const ChartData& chart);

}  // namespace weft::bench

#endif  // WEFT_BENCH_COMPARE_CHART_H_
