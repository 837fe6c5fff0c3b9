from engines_faults import DeviceOutOfMemory

ENGINE = DeviceOutOfMemory
