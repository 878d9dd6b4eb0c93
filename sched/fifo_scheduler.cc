// Links FifoPolicy as the default runtime's policy (the //sched:fifo scheduler target).
#include "weft/sched/fifo_policy.h"

WEFT_DEFAULT_POLICY(weft::FifoPolicy)
