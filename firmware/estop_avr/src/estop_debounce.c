/* Time-based debouncer; see estop_debounce.h. */
#include "estop_debounce.h"

void estop_debounce_init(struct estop_debounce *debounce, uint16_t assert_ms,
                         uint16_t release_ms, int raw_active)
{
    debounce->assert_ms = assert_ms;
    debounce->release_ms = release_ms;
    debounce->state = raw_active ? 1 : 0;
    debounce->pending = 0;
    debounce->since_ms = 0;
}

uint8_t estop_debounce_sample(struct estop_debounce *debounce, int raw_active, uint32_t now_ms)
{
    uint8_t raw = raw_active ? 1 : 0;
    uint16_t required;

    if (raw == debounce->state) {
        debounce->pending = 0;
        return debounce->state;
    }
    if (!debounce->pending) {
        debounce->pending = 1;
        debounce->since_ms = now_ms;
    }
    required = raw ? debounce->assert_ms : debounce->release_ms;
    if ((uint32_t)(now_ms - debounce->since_ms) >= required) {
        debounce->state = raw;
        debounce->pending = 0;
    }
    return debounce->state;
}
