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
