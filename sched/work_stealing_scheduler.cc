// Links WorkStealingPolicy as the default runtime's policy (the //sched:work_stealing target).
#include "weft/sched/work_stealing_policy.h"

WEFT_DEFAULT_POLICY(weft::WorkStealingPolicy)
