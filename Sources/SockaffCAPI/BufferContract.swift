import Glibc

/// An errno for the C caller.
struct CallerErrno: Error {
  let code: Int32
}

/// The Windows control codes' buffer contract, shared by libsockaff's calls:
/// `*returned` is set to the size the answer needs; a missing or too small
/// buffer is EINVAL; on success the answer is stored and the caller's errno
/// is left as it was; on failure -1 with the error's errno.
func respond<Answer>(
  _ out: UnsafeMutableRawPointer?, _ outLength: Int, _ returned: UnsafeMutablePointer<Int>?,
  _ answer: () -> Result<Answer, CallerErrno>
) -> Int32 {
  let savedErrno = errno
  returned?.pointee = MemoryLayout<Answer>.size
  guard let out, outLength >= MemoryLayout<Answer>.size else { return fail(EINVAL) }
  switch answer() {
  case .success(let value):
    out.storeBytes(of: value, as: Answer.self)
    errno = savedErrno
    return 0
  case .failure(let error):
    return fail(error.code)
  }
}

private func fail(_ code: Int32) -> Int32 {
  errno = code
  return -1
}
