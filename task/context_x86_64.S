// Stack switching for weft::internal::Context on x86-64, System V ABI.
//
// A suspended context is its saved stack pointer; below it on its own stack
// sits this frame (addresses grow downward, offsets from the saved sp):
//
//     +56  (alignment padding, fresh contexts only)
//     +48  resume address   — where `ret` goes
//     +40  rbp
//     +32  rbx
//     +24  r12
//     +16  r13
//      +8  r14
//      +0  r15              <- saved sp
//
// Deliberately NOT saved:
//  * Caller-saved registers (rax rcx rdx rsi rdi r8-r11, all vector
//    registers, the flags): weft_context_switch is an ordinary call, so the
//    compiler has already spilled whatever it needs from them around it.
//  * MXCSR and the x87 control word. weft assumes tasks do not change the FP
//    environment across a switch. Measured on this machine (ping-pong, -O2):
//    saving and reloading both costs +2.0 to +2.5 ns per switch (ldmxcsr and
//    fldcw are slow), and reloading only when they differ still +1.0 ns,
//    against a 0.3 ns budget.
//  * The shadow stack: a switch returns to an address its own `call` did not
//    push, so CET shadow stacks cannot work. Built with -fcf-protection the
//    object is marked IBT-only, which keeps shadow stacks off for the program.
//
// The resume is a plain `ret`: when all switches go through one call site
// the return predictor gets it right (see "Call sites" in context.h), and
// the return stack stays in step for the frames above. Measured against
// `pop %rcx; jmp *%rcx`: 1.4 vs 1.65 ns per switch from one call site, but
// 9.3 vs 1.5 ns when two sites alternate. The scheduler should switch from
// one site.

#if defined(__x86_64__)

#if defined(__CET__) && (__CET__ & 1)
#define WEFT_ENDBR endbr64
#else
#define WEFT_ENDBR
#endif

        .text

// void* weft_context_switch(void** save_sp /*rdi*/, void* new_sp /*rsi*/,
//                           void* arg /*rdx*/)  — returns arg in rax.
        .globl  weft_context_switch
        .type   weft_context_switch, @function
        .p2align 4
weft_context_switch:
        .cfi_startproc
        WEFT_ENDBR
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r15, 0
        movq    %rsp, (%rdi)
        // From here rsp is the other context's, whose frame has the same
        // layout, so the CFI above describes it just as well.
        movq    %rsi, %rsp
        popq    %r15
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r15
        popq    %r14
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r14
        popq    %r13
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r13
        popq    %r12
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r12
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbx
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp
        movq    %rdx, %rax
        ret
        .cfi_endproc
        .size   weft_context_switch, .-weft_context_switch

// void* weft_context_prepare(void* stack_top /*rdi*/, void (*entry)(void*)
//                            /*rsi*/, void* self /*rdx*/)
// Writes a fresh frame whose resume address is the trampoline, with entry in
// rbx, self in r12 and rbp = 0 (ends frame-pointer backtraces); returns its
// sp. sp = top - 72 puts rsp at top - 16 after the `ret`, 16-byte aligned as
// the ABI wants at the trampoline's call.
        .globl  weft_context_prepare
        .hidden weft_context_prepare
        .type   weft_context_prepare, @function
        .p2align 4
weft_context_prepare:
        .cfi_startproc
        WEFT_ENDBR
        andq    $-16, %rdi
        leaq    -72(%rdi), %rax
        xorl    %ecx, %ecx
        movq    %rcx, 0(%rax)           // r15
        movq    %rcx, 8(%rax)           // r14
        movq    %rcx, 16(%rax)          // r13
        movq    %rdx, 24(%rax)          // r12 = self
        movq    %rsi, 32(%rax)          // rbx = entry
        movq    %rcx, 40(%rax)          // rbp
        leaq    .Ltrampoline_resume(%rip), %rcx
        movq    %rcx, 48(%rax)
        movq    $0, 56(%rax)
        movq    $0, 64(%rax)
        ret
        .cfi_endproc
        .size   weft_context_prepare, .-weft_context_prepare

// [[noreturn]] void weft_context_start_in_place(void* stack_top /*rdi*/,
//     void (*entry)(void*) /*rsi*/, void* self /*rdx*/, void* arg /*rcx*/)
// Enters a fresh context exactly as the first switch into one written by
// weft_context_prepare would (registers as its frame holds them, rsp 16 below
// the aligned top, arg in rax), without saving anything: the running
// execution is abandoned, and its frames may be on this very stack.
        .globl  weft_context_start_in_place
        .hidden weft_context_start_in_place
        .type   weft_context_start_in_place, @function
        .p2align 4
weft_context_start_in_place:
        .cfi_startproc
        WEFT_ENDBR
        andq    $-16, %rdi
        leaq    -16(%rdi), %rsp
        movq    %rsi, %rbx              // entry
        movq    %rdx, %r12              // self
        movq    %rcx, %rax              // arg
        xorl    %ebp, %ebp
        jmp     .Ltrampoline_resume
        .cfi_endproc
        .size   weft_context_start_in_place, .-weft_context_start_in_place

// First code of a fresh context, reached by weft_context_switch's `ret` with
// arg in rax. Calls weft_context_start(arg, self, entry), which never
// returns. The undefined return address tells unwinders (gdb, perf, C++
// exceptions) that the stack ends here.
        .type   weft_context_trampoline, @function
        .p2align 4
weft_context_trampoline:
        .cfi_startproc
        .cfi_undefined %rip
        // Unwinders look up a return address minus one, so the resume address
        // must not be the first byte: this nop keeps it inside this function.
        nop
.Ltrampoline_resume:
        movq    %rax, %rdi
        movq    %r12, %rsi
        movq    %rbx, %rdx
        call    weft_context_start@PLT
        ud2
        .cfi_endproc
        .size   weft_context_trampoline, .-weft_context_trampoline

#if defined(__CET__) && (__CET__ & 1)
// IBT-compatible (every symbol above that can be reached indirectly starts
// with endbr64); deliberately not SHSTK-compatible.
        .section .note.gnu.property, "a"
        .p2align 3
        .long   4                       // name size
        .long   16                      // descriptor size
        .long   5                       // NT_GNU_PROPERTY_TYPE_0
        .asciz  "GNU"
        .long   0xc0000002              // GNU_PROPERTY_X86_FEATURE_1_AND
        .long   4
        .long   1                       // GNU_PROPERTY_X86_FEATURE_1_IBT
        .p2align 3
#endif

#endif  // __x86_64__

        .section .note.GNU-stack, "", %progbits
