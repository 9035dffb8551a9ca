import ArgumentParser
import CLibbpf
import Glibc

/// `sockaff-bench hold OBJECT`: loads a BPF object and attaches each of its
/// programs by section name (libbpf's auto-attach: tp_btf, raw_tp...), prints
/// their ids as one JSON object, and holds them until stdin closes. The
/// benchmark's baseline for programs bpftool cannot attach (a tp_btf one).
struct HoldPrograms: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hold", abstract: "Attach a BPF object's programs by section and hold them until stdin closes.")

  @Argument(help: "The BPF object file.") var object: String

  func run() throws {
    guard let opened = bpf_object__open_file(object, nil), libbpf_get_error(UnsafeRawPointer(opened)) == 0 else {
      throw ValidationError("cannot open \(object): \(String(cString: strerror(errno)))")
    }
    defer { bpf_object__close(opened) }
    guard bpf_object__load(opened) == 0 else {
      throw ValidationError("cannot load \(object): \(String(cString: strerror(errno)))")
    }
    var links: [OpaquePointer] = []
    defer { links.forEach { _ = bpf_link__destroy($0) } }
    var ids: [String] = []
    var program = bpf_object__next_program(opened, nil)
    while let current = program {
      guard let link = bpf_program__attach(current), libbpf_get_error(UnsafeRawPointer(link)) == 0 else {
        throw ValidationError(
          "cannot attach \(String(cString: bpf_program__name(current))): \(String(cString: strerror(errno)))")
      }
      links.append(link)
      var info = bpf_prog_info()
      var length = UInt32(MemoryLayout<bpf_prog_info>.size)
      _ = withUnsafeMutableBytes(of: &info) {
        bpf_obj_get_info_by_fd(bpf_program__fd(current), $0.baseAddress, &length)
      }
      ids.append("\"\(String(cString: bpf_program__name(current)))\": \(info.id)")
      program = bpf_object__next_program(opened, current)
    }
    print("{" + ids.joined(separator: ", ") + "}")
    fflush(nil)  // every stream: the ids must reach the pipe before the wait
    while readLine() != nil {}
  }
}
