/// Argument checks shared by the core. Why: every public edge names the parameter and the value it got.
module internal Samplers.Core.Internal.Guard

open System

/// Raises ArgumentOutOfRangeException naming the parameter, the value and the rule.
let outOfRange (paramName: string) (value: 'V) (rule: string) : 'T =
    let shown = string value
    raise (ArgumentOutOfRangeException(paramName, box shown, $"{paramName} must be {rule}, but was {shown}."))

/// Checks value >= 1.
let positive (paramName: string) (value: int) =
    if value < 1 then outOfRange paramName value "at least 1"

/// Checks value >= 0.
let nonNegative (paramName: string) (value: int) =
    if value < 0 then outOfRange paramName value "0 or more"
