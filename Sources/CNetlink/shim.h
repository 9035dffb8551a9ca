/* libnl's generic netlink client (Debian's libnl-genl-3-dev): the kernel's
 * netdev family, for each NAPI instance's IRQ and each queue's NAPI. */
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
