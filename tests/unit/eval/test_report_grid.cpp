// The report grid without a model: which cells a report runs and in what order, which a
// results file already holds, the refusal of a file made with other settings, the Markdown
// summary's figures (hand-computed here), and the pictures (font, colours, chart geometry).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "eval/plot_canvas.hpp"
#include "eval/plot_font.hpp"
#include "eval/plot_lines.hpp"
#include "eval/plot_report.hpp"
#include "eval/prompt_fit.hpp"
#include "eval/report_grid.hpp"
#include "eval/report_markdown.hpp"

namespace ltri::eval {
namespace {

EvalConfig grid_config() {
  EvalConfig c;
  c.command = "report";
  c.tasks = {"passkey", "cwe"};
  c.policies = {"full", "ltri"};
  c.lengths = {2048, 1024};
  c.depths = {0.0, 1.0};
  c.samples = 2;
  c.seed = 7;
  c.prompt_template = "plain";
  c.model_dir = "models/ltri-demo";
  return c;
}

SampleResult result(const GridCell& cell, double score) {
  SampleResult r;
  r.policy = cell.policy;
  r.task = cell.task;
  r.length = cell.length;
  r.tokens = cell.length;
  r.depth = cell.depth;
  r.index = cell.index;
  r.score = score;
  r.correct = score == 1.0;
  return r;
}

TEST(ReportGrid, CellsRunShortLengthsFirstAndPoliciesSideBySide) {
  const std::vector<GridCell> cells = grid_cells(grid_config());
  // passkey: 2 depths x 2 samples; cwe (no depth): 1 x 2; per length, per policy.
  ASSERT_EQ(cells.size(), size_t((2 * 2 + 2) * 2 * 2));
  EXPECT_EQ(cells[0].length, 1024);
  EXPECT_EQ(cells.back().length, 2048);
  EXPECT_EQ(cells[0].policy, "full");
  EXPECT_EQ(cells[1].policy, "ltri");  // the same prompt under the next policy
  EXPECT_EQ(cells[1].task, cells[0].task);
  EXPECT_EQ(cells[1].index, cells[0].index);
  int64_t cwe = 0;
  for (const GridCell& c : cells) {
    if (c.task == "cwe") {
      EXPECT_EQ(c.depth, kNoDepth);
      ++cwe;
    }
  }
  EXPECT_EQ(cwe, 2 * 2 * 2);
}

TEST(ReportGrid, PendingCellsAreThoseWithoutASample) {
  const std::vector<GridCell> cells = grid_cells(grid_config());
  std::vector<SampleResult> done{result(cells[0], 1), result(cells[3], 0), result(cells[7], 0.5)};
  const std::vector<GridCell> pending = pending_cells(cells, done);
  EXPECT_EQ(pending.size(), cells.size() - 3);
  for (const GridCell& p : pending) {
    for (const SampleResult& d : done) EXPECT_FALSE(is_sample_of(d, p));
  }
  EXPECT_TRUE(is_sample_of(done[0], cells[0]));
  EXPECT_FALSE(is_sample_of(done[0], cells[1]));  // same prompt, other policy
  EXPECT_EQ(pending_cells(cells, {}).size(), cells.size());
}

TEST(ReportGrid, AFileWithOtherSettingsIsRefusedNamingTheField) {
  const EvalConfig a = grid_config();
  EvalConfig b = a;
  b.threads = 16;  // not a setting of the results
  EXPECT_NO_THROW(check_same_settings(a, b, "r.json"));
  b.lengths = {1024};
  try {
    check_same_settings(a, b, "r.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "r.json: made with different settings, cannot continue it (lengths: [2048,1024] in the file, [1024] now); "
              "give another -o or the file's settings");
  }
  b = a;
  b.attention.n_local = 77;
  try {
    check_same_settings(a, b, "r.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(attention.n_local: 2048 in the file, 77 now)"), std::string::npos) << e.what();
  }
}

EvalReport scored_report() {
  EvalReport r;
  r.config = grid_config();
  r.config.threads = 2;
  r.config.question_placement = "after_context";
  // full: 1k scores 1, 1, 0, 1 (75%); ltri: 1k all 0.5 (50%); 2k full only one sample of 0.
  const std::vector<GridCell> cells = grid_cells(r.config);
  int full_1k = 0;
  for (const GridCell& c : cells) {
    if (c.length != 1024 || c.task != "passkey") continue;
    if (c.policy == "full") {
      r.samples.push_back(result(c, full_1k++ == 2 ? 0.0 : 1.0));
    } else {
      r.samples.push_back(result(c, 0.5));
    }
  }
  GridCell late{"passkey", 2048, 1.0, 0, "full"};
  r.samples.push_back(result(late, 0.0));
  for (SampleResult& s : r.samples) {
    s.prefill_ms = 500.0;  // tokens = length: 1024 / 0.5 s = 2048 tok/s
    s.peak_rss_bytes = size_t(100) << 20;
    s.kv_bytes = size_t(6) << 20;
    s.kv_host_bytes = s.policy == "ltri" ? size_t(3) << 20 : 0;
  }
  return r;
}

TEST(ReportMarkdown, PolicyTableAveragesEachPolicysSamples) {
  EXPECT_EQ(markdown_policy_table(scored_report()),
            "| length \\ policy | full | ltri |\n"
            "|---|---:|---:|\n"
            "| 2k | 0.0 | - |\n"
            "| 1k | 75.0 | 50.0 |\n"
            "| avg | 60.0 | 50.0 |\n");  // full: 3 of 5
}

TEST(ReportMarkdown, SpeedAndMemoryTable) {
  const std::string table = markdown_speed_memory_table(scored_report());
  EXPECT_NE(table.find("| 1k | full | 4 | 2048 | 100.0 | 6.0 | 0.0 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| 1k | ltri | 4 | 2048 | 100.0 | 6.0 | 3.0 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| 2k | full | 1 | 4096 | 100.0 | 6.0 | 0.0 |"), std::string::npos) << table;
  EXPECT_EQ(table.find("| 2k | ltri"), std::string::npos);
}

TEST(ReportMarkdown, SummaryLabelsTheHarnessAndTheInfllmVariant) {
  EvalReport r = scored_report();
  const std::string after = markdown_report(r);
  EXPECT_NE(after.find("question after the context (RULER / InfiniteBench placement)"), std::string::npos);
  EXPECT_NE(after.find("## ltri: accuracy (%) by task and length"), std::string::npos);
  EXPECT_NE(after.find("### full, passkey: accuracy (%) by depth"), std::string::npos);
  EXPECT_EQ(after.find("### full, cwe"), std::string::npos);  // no depth table for cwe
  r.config.question_placement = "before_and_after_context";
  EXPECT_NE(markdown_report(r).find("InfLLM's variant"), std::string::npos);
}

TEST(ReportPictures, HeatMapCellsAreTheMeanScoreByDepthAndLength) {
  const HeatMap map = depth_heatmap(scored_report(), "full");
  EXPECT_EQ(map.x_labels, (std::vector<std::string>{"1k", "2k"}));  // sorted
  EXPECT_EQ(map.y_labels, (std::vector<std::string>{"0%", "100%"}));
  ASSERT_EQ(map.values.size(), 4u);
  // full at 1k: depth 0 -> samples 1, 1; depth 1 -> 0, 1. 2k: only depth 1 -> 0.
  EXPECT_DOUBLE_EQ(map.values[0], 100.0);
  EXPECT_TRUE(std::isnan(map.values[1]));
  EXPECT_DOUBLE_EQ(map.values[2], 50.0);
  EXPECT_DOUBLE_EQ(map.values[3], 0.0);
  EXPECT_NE(map.title.find("full"), std::string::npos);
  EXPECT_EQ(map.title.find("cwe"), std::string::npos);  // only tasks with a depth
}

TEST(ReportPictures, HeatMapPaintsEachCellInItsRampColour) {
  HeatMap map;
  map.title = "t";
  map.x_label = "x";
  map.y_label = "y";
  map.scale_label = "s";
  map.x_labels = {"a", "b"};
  map.y_labels = {"r"};
  map.values = {0.0, 100.0};
  const RgbImage image = render_heatmap(map);
  // Count pixels of each end colour of the ramp: both cells (>= 44 x 24 each, less their
  // label) must be there.
  const auto count = [&](Rgb c) {
    int64_t n = 0;
    for (size_t i = 0; i + 2 < image.pixels.size(); i += 3) {
      n += image.pixels[i] == c.r && image.pixels[i + 1] == c.g && image.pixels[i + 2] == c.b;
    }
    return n;
  };
  EXPECT_GT(count(Rgb{68, 1, 84}), 44 * 24 - 100);      // viridis' dark end
  EXPECT_GT(count(Rgb{253, 231, 37}), 44 * 24 - 100);   // its yellow end
}

TEST(ReportPictures, FontGlyphsAndTextWidth) {
  // 'T': a full top bar and a centre stem; 'L': a left stem and a full bottom bar.
  for (int c = 0; c < 5; ++c) EXPECT_TRUE(glyph_pixel('T', c, 0));
  for (int r = 1; r < 7; ++r) EXPECT_TRUE(glyph_pixel('T', 2, r) && !glyph_pixel('T', 0, r));
  for (int r = 0; r < 7; ++r) EXPECT_TRUE(glyph_pixel('L', 0, r));
  for (int c = 0; c < 5; ++c) EXPECT_TRUE(glyph_pixel('L', c, 6));
  for (int r = 0; r < 9; ++r) {
    for (int c = 0; c < 5; ++c) EXPECT_FALSE(glyph_pixel(' ', c, r));
  }
  EXPECT_TRUE(glyph_pixel('g', 4, 7));  // a descender below the baseline
  EXPECT_FALSE(glyph_pixel('a', 4, 7));
  EXPECT_EQ(Canvas::text_width("abc"), 17);
  EXPECT_EQ(Canvas::text_width("abc", 2), 34);
  Canvas canvas(40, 12);
  canvas.text(1, 1, "I", kBlack);
  // 'I' at (1, 1): the stem is column 2 of the glyph, rows 1..5.
  const auto ink = [&](int64_t x, int64_t y) { return canvas.image().pixels[size_t((y * 40 + x) * 3)] == 0; };
  EXPECT_TRUE(ink(3, 3));
  EXPECT_FALSE(ink(1, 3));
}

TEST(ReportPictures, NiceTicksAndShortNumbers) {
  EXPECT_EQ(nice_ticks(100.0), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(nice_ticks(9.0), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(short_number(950), "950");
  EXPECT_EQ(short_number(12000), "12k");
  EXPECT_EQ(short_number(3500000), "3.5M");
}

TEST(ReportPictures, AccuracyChartHasALinePerPolicyOverSortedLengths) {
  const LineChart chart = accuracy_chart(scored_report());
  ASSERT_EQ(chart.series.size(), 2u);
  EXPECT_EQ(chart.series[0].name, "full");
  EXPECT_EQ(chart.series[0].x, (std::vector<double>{1024, 2048}));
  EXPECT_DOUBLE_EQ(chart.series[0].y[0], 75.0);
  EXPECT_DOUBLE_EQ(chart.series[0].y[1], 0.0);
  EXPECT_DOUBLE_EQ(chart.series[1].y[0], 50.0);
  EXPECT_TRUE(std::isnan(chart.series[1].y[1]));
  EXPECT_EQ(*chart.y_max, 100.0);
  const RgbImage image = render_line_chart(chart);
  EXPECT_GT(image.width, 480);
}

}  // namespace
}  // namespace ltri::eval
