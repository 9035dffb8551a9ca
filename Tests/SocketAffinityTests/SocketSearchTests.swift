import XCTest

@testable import SocketAffinity

/// The kernel's socket tables as /proc/net prints them, and addresses as an
/// operator writes them.
final class SocketSearchTests: XCTestCase {
  func testTablesOfBothFamiliesParse() {
    let tcp = """
        sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
         0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31577 1 0000000000000000 100 0 0 10 0
         1: 0100007F:A0E4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 0 1 0000000000000000 20 4 30 10 -1
      """
    let rows = SocketSearch.parseTable(tcp)
    XCTAssertEqual(rows.count, 1, "a row with inode 0 (no socket to hold) is left out")
    XCTAssertEqual(rows.first?.local, SocketSearch.Endpoint("127.0.0.1:8080"))
    XCTAssertEqual(rows.first?.remote, SocketSearch.Endpoint("0.0.0.0:0"))
    XCTAssertEqual(rows.first?.inode, 31577)
    XCTAssertEqual(rows.first?.state, 0x0A, "a listener")
    XCTAssertEqual(SocketSearch.parseTable(tcp.replacingOccurrences(of: " 31577", with: " 1")).first?.uid, 0)

    let udp6 = """
        sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
        5: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0
        6: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4343 2 0000000000000000 0
      """
    let six = SocketSearch.parseTable(udp6)
    XCTAssertEqual(six.map(\.local), [SocketSearch.Endpoint("[::1]:53"), SocketSearch.Endpoint("127.0.0.1:8081")])
    XCTAssertEqual(six.map(\.state), [0x07, 0x07], "unconnected")
  }

  func testEndpointsAsAnOperatorWritesThem() {
    XCTAssertEqual(SocketSearch.Endpoint("10.0.0.1")?.port, nil)
    XCTAssertEqual(SocketSearch.Endpoint("10.0.0.1:80")?.port, 80)
    XCTAssertEqual(SocketSearch.Endpoint("[::1]:443")?.address, [UInt8](repeating: 0, count: 15) + [1])
    XCTAssertEqual(SocketSearch.Endpoint("::1")?.port, nil)
    XCTAssertEqual(SocketSearch.Endpoint("::ffff:10.0.0.1"), SocketSearch.Endpoint("10.0.0.1"), "mapped is IPv4")
    for bad in ["", "nowhere", "10.0.0.1:", "10.0.0.1:99999", "[::1", "[::1]80", "300.0.0.1"] {
      XCTAssertNil(SocketSearch.Endpoint(bad), bad)
    }
    let any = SocketSearch.Endpoint("10.0.0.1")!
    XCTAssertTrue(any.matches(SocketSearch.Endpoint("10.0.0.1:5")!))
    XCTAssertFalse(SocketSearch.Endpoint("10.0.0.1:6")!.matches(SocketSearch.Endpoint("10.0.0.1:5")!))
  }
}
