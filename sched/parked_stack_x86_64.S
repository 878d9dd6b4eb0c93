// weft_call_on_parked_stack: runs fn(arg) on a parked task's stack, just below its saved frame,
// in such a way that an unwinder started inside fn walks on into the parked task's frames.
// This is how task dumps get backtraces of parked tasks from the DWARF unwinder, which works
// in optimized code without frame pointers (see backtrace.cc).
//
// The parked frame (context_x86_64.S), offsets from the saved sp:
//     +48 resume address, +40 rbp, +32 rbx, +24 r12, +16 r13, +8 r14, +0 r15
// While fn runs, this function's CFI describes exactly that frame, with the stack pointer one
// word below the saved sp (the call's alignment slot): to an unwinder, it is the parked
// weft_context_switch itself, and the resume address is its return address.
//
// The caller must own the parked stack (no one may resume the task meanwhile) and leave fn
// enough room below the saved sp.

#if defined(__x86_64__)

#if defined(__CET__) && (__CET__ & 1)
#define WEFT_ENDBR endbr64
#else
#define WEFT_ENDBR
#endif

        .text

// void weft_call_on_parked_stack(void* parked_sp /*rdi*/, void (*fn)(void*) /*rsi*/,
//                                void* arg /*rdx*/)
        .globl  weft_call_on_parked_stack
        .hidden weft_call_on_parked_stack
        .type   weft_call_on_parked_stack, @function
        .p2align 4
weft_call_on_parked_stack:
        .cfi_startproc
        WEFT_ENDBR
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        .cfi_remember_state
        // A parked sp is 8 mod 16 (six pushes after a call), so this is 16-byte aligned.
        leaq    -8(%rdi), %rsp
        .cfi_def_cfa %rsp, 64
        .cfi_offset %r15, -56
        .cfi_offset %r14, -48
        .cfi_offset %r13, -40
        .cfi_offset %r12, -32
        .cfi_offset %rbx, -24
        .cfi_offset %rbp, -16
        movq    %rdx, %rdi
        call    *%rsi
        movq    %rbp, %rsp
        .cfi_restore_state
        popq    %rbp
        .cfi_def_cfa %rsp, 8
        .cfi_restore %rbp
        ret
        .cfi_endproc
        .globl  weft_call_on_parked_stack_end
        .hidden weft_call_on_parked_stack_end
weft_call_on_parked_stack_end:
        .size   weft_call_on_parked_stack, .-weft_call_on_parked_stack

#if defined(__CET__) && (__CET__ & 1)
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
