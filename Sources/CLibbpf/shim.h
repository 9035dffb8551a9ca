#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <bpf/btf.h>
#include <linux/btf.h>
