#include "weft/sched/backtrace.h"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>
#include <unwind.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "weft/sched/parked_stack.h"
#include "weft/task/task_core.h"

namespace weft::internal {
namespace {

struct Unwind {
  void** pcs;
  int max;
  int n = 0;
  bool in_task = false;  // past weft_call_on_parked_stack: the frames are the task's
};

// These two run on the parked task's stack: not instrumented, so the sanitizers need not know
// about the excursion (their bookkeeping follows the dumper's own stack).
__attribute__((no_sanitize_address, no_sanitize_thread)) _Unwind_Reason_Code collect_frame(
    _Unwind_Context* context, void* arg) {
  auto* u = static_cast<Unwind*>(arg);
  const std::uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  if (!u->in_task) {
    u->in_task = ip > reinterpret_cast<std::uintptr_t>(&weft_call_on_parked_stack) &&
                 ip <= reinterpret_cast<std::uintptr_t>(weft_call_on_parked_stack_end);
    return _URC_NO_REASON;
  }
  u->pcs[u->n++] = reinterpret_cast<void*>(ip);
  return u->n == u->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

__attribute__((noinline, no_sanitize_address, no_sanitize_thread)) void unwind_here(void* arg) {
  _Unwind_Backtrace(&collect_frame, arg);
}

_Unwind_Reason_Code stop_at_first(_Unwind_Context*, void*) { return _URC_END_OF_STACK; }

// The first unwind of a process resolves the unwinder's own symbols (lazy binding saves the
// whole vector register file on the stack): do it here, on the dumper's stack, not the task's.
void warm_up_unwinder() {
  static std::once_flag once;
  std::call_once(once, [] { _Unwind_Backtrace(&stop_at_first, nullptr); });
}

// --- Symbols ---------------------------------------------------------------------------------

struct Symbol {
  std::uintptr_t address;
  std::uintptr_t size;
  std::uint32_t name;  // offset in ModuleSymbols::names
};

struct ModuleSymbols {
  std::vector<Symbol> symbols;  // functions, by address
  std::string names;
};

bool read_at(int fd, void* out, std::size_t size, std::uint64_t offset) {
  return pread(fd, out, size, static_cast<off_t>(offset)) == static_cast<ssize_t>(size);
}

// The module file's function symbols: the full table when it has one (static functions and
// lambdas included), else the dynamic one. Empty when the file cannot be read.
std::unique_ptr<ModuleSymbols> load_symbols(const std::string& path) {
  auto module = std::make_unique<ModuleSymbols>();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return module;
  ElfW(Ehdr) header;
  std::vector<ElfW(Shdr)> sections;
  bool ok = read_at(fd, &header, sizeof header, 0) &&
            std::memcmp(header.e_ident, ELFMAG, SELFMAG) == 0 &&
            header.e_shentsize == sizeof(ElfW(Shdr)) && header.e_shnum > 0;
  if (ok) {
    sections.resize(header.e_shnum);
    ok = read_at(fd, sections.data(), sections.size() * sizeof(ElfW(Shdr)), header.e_shoff);
  }
  const ElfW(Shdr)* table = nullptr;
  for (int pass = 0; ok && pass < 2 && table == nullptr; ++pass) {
    for (const auto& s : sections) {
      if (s.sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM)) table = &s;
    }
  }
  if (table != nullptr && table->sh_link < sections.size() &&
      table->sh_entsize == sizeof(ElfW(Sym))) {
    const ElfW(Shdr)& strings = sections[table->sh_link];
    std::vector<ElfW(Sym)> symbols(table->sh_size / sizeof(ElfW(Sym)));
    module->names.resize(strings.sh_size);
    if (read_at(fd, module->names.data(), module->names.size(), strings.sh_offset) &&
        read_at(fd, symbols.data(), symbols.size() * sizeof(ElfW(Sym)), table->sh_offset)) {
      for (const auto& s : symbols) {
        if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF || s.st_value == 0 ||
            s.st_name >= module->names.size()) {
          continue;
        }
        module->symbols.push_back({static_cast<std::uintptr_t>(s.st_value),
                                   static_cast<std::uintptr_t>(s.st_size), s.st_name});
      }
      std::sort(module->symbols.begin(), module->symbols.end(),
                [](const Symbol& a, const Symbol& b) { return a.address < b.address; });
    } else {
      module->names.clear();
    }
  }
  close(fd);
  return module;
}

struct ModuleQuery {
  std::uintptr_t pc = 0;
  bool found = false;
  std::string path;
  std::uintptr_t bias = 0;
};

int find_module(dl_phdr_info* info, std::size_t, void* data) {
  auto* q = static_cast<ModuleQuery*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && q->pc >= start && q->pc < start + ph.p_memsz) {
      q->found = true;
      // The main program has no name here.
      q->path = (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') ? "/proc/self/exe"
                                                                           : info->dlpi_name;
      q->bias = info->dlpi_addr;
      return 1;
    }
  }
  return 0;
}

std::string module_label(const std::string& path) {
  std::string real = path;
  if (path == "/proc/self/exe") {
    char buf[4096];
    const ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
    if (n > 0) real.assign(buf, static_cast<std::size_t>(n));
  }
  const std::size_t slash = real.rfind('/');
  return slash == std::string::npos ? real : real.substr(slash + 1);
}

std::string demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (out == nullptr) return name;
  std::string s(out);
  std::free(out);
  return s;
}

}  // namespace

int parked_backtrace(const TaskCore* t, void** pcs, int max) {
  const char* sp = static_cast<const char*>(t->context.saved_sp());
  const char* lo = static_cast<const char*>(t->stack.lo);
  const char* hi = static_cast<const char*>(t->stack.hi());
  if (sp == nullptr || lo == nullptr || max <= 0) return 0;
  if (sp < lo + kUnwindStackReserve || sp >= hi) return -1;
  warm_up_unwinder();
  Unwind u{pcs, max};
  weft_call_on_parked_stack(const_cast<char*>(sp), &unwind_here, &u);
  return u.n;
}

std::vector<std::string> symbolize(void* const* pcs, int n) {
  struct Module {
    std::unique_ptr<ModuleSymbols> symbols;
    std::string label;
  };
  // Symbol tables are read once per module and kept: dumps are rare, modules few.
  static std::mutex mu;
  static auto* modules = new std::map<std::string, Module>;
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    const auto pc = reinterpret_cast<std::uintptr_t>(pcs[i]);
    char head[32];
    std::snprintf(head, sizeof head, "0x%016" PRIxPTR, pc);
    std::string line = head;
    ModuleQuery q;
    q.pc = pc;
    dl_iterate_phdr(&find_module, &q);
    if (!q.found) {
      lines.push_back(line);
      continue;
    }
    auto it = modules->find(q.path);
    if (it == modules->end()) {
      it = modules->emplace(q.path, Module{load_symbols(q.path), module_label(q.path)}).first;
    }
    const Module& m = it->second;
    // A return address: the call that made it is the byte before.
    const std::uintptr_t address = pc - 1 - q.bias;
    const auto& symbols = m.symbols->symbols;
    auto sym = std::upper_bound(symbols.begin(), symbols.end(), address,
                                [](std::uintptr_t a, const Symbol& s) { return a < s.address; });
    if (sym != symbols.begin()) {
      --sym;
      if (address < sym->address + std::max<std::uintptr_t>(sym->size, 1)) {
        char offset[32];
        std::snprintf(offset, sizeof offset, "+0x%" PRIxPTR, address + 1 - sym->address);
        line += " " + demangle(m.symbols->names.c_str() + sym->name) + offset;
      }
    }
    char where[32];
    std::snprintf(where, sizeof where, "+0x%" PRIxPTR ")", pc - q.bias);
    line += " (" + m.label + where;
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace weft::internal
