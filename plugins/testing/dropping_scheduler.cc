// Links DroppingPolicy as the default runtime's policy (//plugins/testing:dropping).
#include "weft/plugins/testing/dropping_policy.h"

WEFT_DEFAULT_POLICY(weft::plugins::DroppingPolicy)
