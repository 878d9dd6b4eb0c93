// Links LifoPolicy as the default runtime's policy (the //plugins:lifo scheduler target).
#include "weft/plugins/lifo_policy.h"

WEFT_DEFAULT_POLICY(weft::plugins::LifoPolicy)
