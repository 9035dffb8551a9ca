import Foundation

/// Help text as paragraphs: the discussions are written wrapped in the
/// source, and the argument parser wraps each line again to the terminal's
/// width, so a source line a little longer than the terminal left one word
/// on a line of its own. Joined into one line per paragraph (blank lines
/// between paragraphs kept), they are wrapped once, at any width.
func paragraphs(_ text: String) -> String {
  text.components(separatedBy: "\n\n").map { paragraph in
    paragraph.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
  }.joined(separator: "\n\n")
}
