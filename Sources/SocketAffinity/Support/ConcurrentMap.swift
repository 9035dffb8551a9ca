import Dispatch
import Synchronization

/// `body(0..<count)` on every CPU (DispatchQueue.concurrentPerform), the
/// results in index order: the one way a listing and its JSON are spread
/// over the host's CPUs.
public func concurrentMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
  let slots = Mutex([T?](repeating: nil, count: count))
  DispatchQueue.concurrentPerform(iterations: count) { index in
    let value = body(index)
    slots.withLock { $0[index] = value }
  }
  return slots.withLock { $0.map { $0! } }
}

/// `body` over 0..<count in slices of `size` indices, on every CPU (one
/// `concurrentMap` item a slice), the results in slice order.
public func concurrentSlices<T: Sendable>(_ count: Int, size: Int, _ body: @Sendable (Range<Int>) -> T) -> [T] {
  concurrentMap((count + size - 1) / size) { body($0 * size..<min(($0 + 1) * size, count)) }
}
