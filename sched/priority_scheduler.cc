// Links PriorityPolicy as the default runtime's policy (the //sched:priority target).
#include "weft/sched/priority_policy.h"

WEFT_DEFAULT_POLICY(weft::PriorityPolicy)
